// The diff view: base and head selections side by side, sent to POST /api/v1/diff; a diff flame
// graph of the union tree coloured by change (red = head uses more, green = less) and the table
// of changed functions. The diff engine is the server's; if the server has no diff endpoint
// (404/405) the view says so.

import { getJSON, postJSON } from "./api.js";
import { el, setChildren } from "./dom.js";
import { FlameGraph } from "./flame.js";
import { diffColour, escapeRegex, formatValue, searchRegex, signedPercent } from "./format.js";
import { debounce, setPageState, showError } from "./page.js";
import { QueryBar, fillTypes } from "./query.js";
import { apiQuery, writeState } from "./state.js";

const $ = (id) => document.getElementById(id);
const BASE = { query: "bquery", from: "bfrom", until: "buntil" };
const HEAD = { query: "hquery", from: "hfrom", until: "huntil" };

function share(v, total) {
  return total > 0 ? v / total : 0;
}

export class DiffView {
  constructor(app) {
    this.app = app;
    this.seq = 0;
    this.unit = "";
    this.totals = { base: 0, head: 0 };
    this.shared = new QueryBar({ id: "d", fields: ["type", "granularity"] });
    const context = (names) => () => ({ type: this.shared.controls.type.value,
      from: this.app.state[names.from], until: this.app.state[names.until] });
    this.base = new QueryBar({ id: "base", fields: ["selector", "time"], names: BASE, title: "Base",
      context: context(BASE) });
    this.head = new QueryBar({ id: "head", fields: ["selector", "time"], names: HEAD, title: "Head",
      context: context(HEAD) });
    $("diff-shared-slot").replaceWith(this.shared.element);
    $("diff-base-slot").append(this.base.element);
    $("diff-head-slot").append(this.head.element);
    this.flame = new FlameGraph($("diff-flame"), {
      weight: (n) => this.weight(n),
      colour: (nd) => diffColour(share(nd.raw.base.total, this.totals.base), share(nd.raw.head.total, this.totals.head)),
      describe: (nd) => this.describe(nd),
      tooltip: $("tooltip"),
      onZoom: () => {},
    });
    $("diff-form").addEventListener("submit", (e) => {
      e.preventDefault();
      for (const bar of [this.shared, this.base, this.head]) bar.read(this.app.state);
      writeState(this.app.state, true);
      this.run();
    });
    const search = $("diff-search");
    search.addEventListener("input", debounce(() => this.flame.setSearch(searchRegex(search.value)), 120));
    $("diff-reset-zoom").addEventListener("click", () => this.flame.setZoom(0));
    $("diff-table").addEventListener("click", (e) => {
      const tr = e.target.closest("tbody tr");
      if (!tr) return;
      search.value = `^${escapeRegex(tr.dataset.name)}$`;
      this.flame.setSearch(searchRegex(search.value));
    });
  }

  /** Width of a union-tree node: its share of the base plus its share of the head. */
  weight(n) {
    return share(n.base.total, this.totals.base) + share(n.head.total, this.totals.head);
  }

  async start() {
    const st = this.app.state;
    for (const bar of [this.shared, this.base, this.head]) bar.write(st);
    try {
      const types = (await getJSON("/api/v1/profile_types")).profile_types;
      fillTypes(this.shared.controls.type, types, st.type);
    } catch (e) {
      showError(e);
      setPageState("error");
      return;
    }
    const differ = st.bquery !== st.hquery || st.bfrom !== st.hfrom || st.buntil !== st.huntil;
    if (differ) {
      await this.run();    // a shared link: compare right away
    } else {
      this.message("Choose a base and a head selection (e.g. two versions or two time ranges) and press Compare.");
      setPageState("ready");
    }
  }

  message(text) {
    const box = $("diff-message");
    box.textContent = text || "";
    box.hidden = !text;
  }

  request() {
    const st = this.app.state;
    const type = this.shared.controls.type.value || st.type;
    return {
      base: { query: apiQuery(type, st.bquery), from: st.bfrom || null, until: st.buntil || null },
      head: { query: apiQuery(type, st.hquery), from: st.hfrom || null, until: st.huntil || null },
      granularity: st.granularity, normalize: "total", limit: 200,
    };
  }

  async run() {
    const seq = ++this.seq;
    setPageState("loading");
    this.message("");
    let res;
    try {
      res = await postJSON("/api/v1/diff", this.request());
    } catch (e) {
      if (seq !== this.seq) return;
      this.clear();
      if (e.status === 404 || e.status === 405) {
        this.message("The diff endpoint is not available on this server (POST /api/v1/diff answered "
          + `${e.status}). Upgrade the server to a version with diff support.`);
        $("diff-message").dataset.kind = "unavailable";
        setPageState("ready");
      } else {
        showError(e);
        setPageState("error");
      }
      return;
    }
    if (seq !== this.seq) return;
    showError(null);
    this.render(res);
    setPageState("ready");
  }

  clear() {
    $("diff-flame-panel").hidden = true;
    $("diff-table-panel").hidden = true;
    $("diff-summary").replaceChildren();
  }

  render(res) {
    const fg = res.flamegraph;
    this.unit = res.unit;
    this.totals = fg ? { base: fg.base.total, head: fg.head.total } : { base: 0, head: 0 };
    $("diff-flame-panel").hidden = !fg;
    $("diff-table-panel").hidden = false;
    if (fg) this.flame.setData(fg);
    const fmt = (v) => formatValue(v, res.unit);
    const verdict = res.regressed
      ? el("span", { class: "verdict bad" }, `regressed: ${res.regressions.length} function(s)`)
      : el("span", { class: "verdict good" }, "no regression found");
    setChildren($("diff-summary"),
      el("span", {}, `base: ${res.base.profiles} profile(s), total ${fmt(res.base.total)}`),
      el("span", {}, `head: ${res.head.profiles} profile(s), total ${fmt(res.head.total)}`),
      verdict,
      res.method_note ? el("span", { class: "muted" }, res.method_note) : null,
      ...(res.warnings || []).map((w) => el("span", { class: "warning" }, w)));
    this.renderTable(res);
  }

  renderTable(res) {
    const regressed = new Set(res.regressions.map((r) => r.name));
    const improved = new Set(res.improvements.map((r) => r.name));
    const fmt = (v) => formatValue(v, res.unit);
    const head = el("tr", {}, ...["base", "head", "base%", "head%", "change", "relative", "verdict", "name"]
      .map((h) => el("th", { class: h === "name" ? "name" : "num", scope: "col" }, h)));
    const rows = res.functions.map((r) => {
      const verdict = regressed.has(r.name) ? "regression" : improved.has(r.name) ? "improvement" : "";
      const pp = r.head_share_pct - r.base_share_pct;
      return el("tr", { dataset: { name: r.name }, class: verdict },
        el("td", { class: "num" }, fmt(r.raw.base)),
        el("td", { class: "num" }, fmt(r.raw.head)),
        el("td", { class: "num" }, `${r.base_share_pct.toFixed(2)}%`),
        el("td", { class: "num" }, `${r.head_share_pct.toFixed(2)}%`),
        el("td", { class: `num ${pp > 0 ? "up" : pp < 0 ? "down" : ""}` }, `${pp > 0 ? "+" : ""}${pp.toFixed(2)} pp`),
        el("td", { class: "num" }, signedPercent(r.delta_pct)),
        el("td", { class: "num" }, verdict),
        el("td", { class: "name" }, r.name));
    });
    setChildren($("diff-table"), el("thead", {}, head), el("tbody", {}, ...rows));
    $("diff-table-info").textContent = `${res.functions.length} functions by size of change (${res.metric}); `
      + `values normalised by ${res.normalize}`;
  }

  describe(nd) {
    const fmt = (v) => formatValue(v, this.unit);
    const b = nd.raw.base.total;
    const h = nd.raw.head.total;
    const bs = share(b, this.totals.base);
    const hs = share(h, this.totals.head);
    const rel = bs > 0 ? (100 * (hs - bs)) / bs : null;
    return [
      ["Base total", `${fmt(b)} (${(100 * bs).toFixed(2)}%)`],
      ["Head total", `${fmt(h)} (${(100 * hs).toFixed(2)}%)`],
      ["Base self", fmt(nd.raw.base.self)],
      ["Head self", fmt(nd.raw.head.self)],
      ["Change of share", `${hs >= bs ? "+" : ""}${(100 * (hs - bs)).toFixed(2)} pp (${signedPercent(rel)})`],
    ];
  }
}
