// The top table: flat, flat%, cum, cum%, name; sortable by any column; clicking a row selects
// that function (the app highlights it in the flame graph).

import { el, setChildren } from "./dom.js";
import { formatValue, percent } from "./format.js";

const COLUMNS = [
  { key: "flat", label: "flat", numeric: true },
  { key: "flat_pct", label: "flat%", numeric: true },
  { key: "cum", label: "cum", numeric: true },
  { key: "cum_pct", label: "cum%", numeric: true },
  { key: "name", label: "name", numeric: false },
];
const SORT_VALUE = { flat: "flat", flat_pct: "flat", cum: "cum", cum_pct: "cum", name: "name" };

/** "cum:desc" -> {key: "cum", dir: "desc"}; empty or unknown -> null (the API's order). */
export function parseSort(text) {
  const [key, dir] = (text || "").split(":");
  if (!COLUMNS.some((c) => c.key === key)) return null;
  return { key, dir: dir === "asc" ? "asc" : "desc" };
}

export class TopTable {
  /** @param opts.onSelect(name) a row was clicked; @param opts.onSort("key:dir") a header was. */
  constructor(table, opts) {
    this.table = table;
    this.opts = opts;
    this.rows = [];
    this.total = 0;
    this.unit = "";
    this.sort = null;
    this.selected = null;
    this.head = el("tr");
    this.body = el("tbody");
    setChildren(table, el("thead", {}, this.head), this.body);
    table.addEventListener("click", (e) => this.click(e));
    table.addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && e.target.closest("th")) {
        e.preventDefault();
        this.click(e);
      }
    });
    this.renderHead();
  }

  setData(rows, total, unit) {
    this.rows = rows;
    this.total = total;
    this.unit = unit;
    this.renderBody();
  }

  setSort(text) {
    this.sort = parseSort(text);
    this.renderHead();
    this.renderBody();
  }

  setSelected(name) {
    this.selected = name;
    for (const tr of this.body.children) tr.classList.toggle("selected", tr.dataset.name === name);
  }

  renderHead() {
    setChildren(this.head, ...COLUMNS.map((c) => {
      const sorted = this.sort && this.sort.key === c.key;
      return el("th", {
        class: c.numeric ? "num" : "name", dataset: { key: c.key }, tabindex: 0, scope: "col",
        "aria-sort": sorted ? (this.sort.dir === "asc" ? "ascending" : "descending") : "none",
      }, c.label);
    }));
  }

  sortedRows() {
    if (!this.sort) return this.rows;
    const field = SORT_VALUE[this.sort.key];
    const sign = this.sort.dir === "asc" ? 1 : -1;
    const rows = [...this.rows];
    if (field === "name") rows.sort((a, b) => sign * (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    else rows.sort((a, b) => sign * (a[field] - b[field]) || (a.name < b.name ? -1 : 1));
    return rows;
  }

  renderBody() {
    const fmt = (v) => formatValue(v, this.unit);
    setChildren(this.body, ...this.sortedRows().map((r) => el("tr", {
      dataset: { name: r.name }, class: r.name === this.selected ? "selected" : "",
    },
    el("td", { class: "num" }, fmt(r.flat)),
    el("td", { class: "num" }, percent(r.flat, this.total)),
    el("td", { class: "num" }, fmt(r.cum)),
    el("td", { class: "num" }, percent(r.cum, this.total)),
    el("td", { class: "name" }, r.name))));
  }

  click(e) {
    const th = e.target.closest("th");
    if (th) {
      const key = th.dataset.key;
      const numeric = COLUMNS.find((c) => c.key === key).numeric;
      let dir = numeric ? "desc" : "asc";
      if (this.sort && this.sort.key === key) dir = this.sort.dir === "asc" ? "desc" : "asc";
      this.setSort(`${key}:${dir}`);
      this.opts.onSort(`${key}:${dir}`);
      return;
    }
    const tr = e.target.closest("tbody tr");
    if (tr) this.opts.onSelect(tr.dataset.name);
  }
}
