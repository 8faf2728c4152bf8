// profscope UI entry point: the single-selection view (flame graph + top table) and the router
// between it and the diff view. All state is in the URL (see state.js).

import { apiUrl, download, getJSON, setTenant } from "./api.js";
import { DiffView } from "./diff.js";
import { el, setChildren } from "./dom.js";
import { FlameGraph } from "./flame.js";
import { escapeRegex, formatValue, frameColour, percent, searchRegex } from "./format.js";
import { debounce, setPageState, showError } from "./page.js";
import { QueryBar, fillTypes, typeLabel } from "./query.js";
import { apiQuery, readState, stateQuery, writeState } from "./state.js";
import { TopTable } from "./top.js";

const $ = (id) => document.getElementById(id);
const TOP_LIMIT = 500;
const EXPORT_FILES = { pprof: "profile.pb.gz", speedscope: "profile.speedscope.json", folded: "profile.txt" };

class SingleView {
  constructor(app) {
    this.app = app;
    this.seq = 0;
    this.total = 0;
    this.unit = "";
    this.bar = new QueryBar({ id: "q", fields: ["type", "selector", "time", "granularity", "filters"] });
    $("query-slot").replaceWith(this.bar.element);
    this.flame = new FlameGraph($("flame"), {
      weight: (n) => n.total,
      colour: (nd) => frameColour(nd.name),
      describe: (nd) => this.describe(nd),
      tooltip: $("tooltip"),
      onZoom: (path) => {
        this.app.state.zoom = path;
        writeState(this.app.state, true);
        this.showZoom();
      },
    });
    this.top = new TopTable($("top"), {
      onSelect: (name) => this.selectFunction(name),
      onSort: (sort) => {
        this.app.state.sort = sort;
        writeState(this.app.state);
      },
    });
    $("query-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    const search = $("search");
    search.addEventListener("input", debounce(() => {
      this.app.state.search = search.value;
      writeState(this.app.state);
      this.applySearch();
    }, 120));
    $("reset-zoom").addEventListener("click", () => this.flame.setZoom(0));
    for (const a of document.querySelectorAll("#export a")) {
      a.addEventListener("click", (e) => {
        if (!this.app.state.tenant) return;    // plain link; with a tenant the header must be sent
        e.preventDefault();
        download(a.href, EXPORT_FILES[a.dataset.format]).catch(showError);
      });
    }
  }

  /** Enter the view with the URL's state: load the profile types, then query. */
  async start() {
    const st = this.app.state;
    this.bar.write(st);
    $("search").value = st.search;
    this.top.setSort(st.sort);
    let types;
    try {
      types = (await getJSON("/api/v1/profile_types", { from: st.from, until: st.until })).profile_types;
    } catch (e) {
      fillTypes(this.bar.controls.type, [], st.type);
      showError(e);
      setPageState("error");
      return;
    }
    fillTypes(this.bar.controls.type, types, st.type);
    if (!types.length && !st.type) {
      setChildren($("summary"), el("span", { class: "notice" },
        "No profiles stored yet. Ingest one, e.g. curl --data-binary @cpu.pb.gz "
        + `'${location.origin}/api/v1/ingest?service=api'`));
      this.flame.setData(null);
      this.top.setData([], 0, "");
      setPageState("ready");
      return;
    }
    if (!st.type) {
      st.type = this.bar.controls.type.value;
      writeState(st);
    }
    await this.run();
  }

  submit() {
    const st = this.app.state;
    this.bar.read(st);
    st.zoom = [];
    writeState(st, true);
    this.run();
  }

  params() {
    const st = this.app.state;
    return { query: apiQuery(st.type, st.query), from: st.from, until: st.until,
      granularity: st.granularity, focus: st.focus, ignore: st.ignore };
  }

  updateExportLinks(params) {
    for (const a of document.querySelectorAll("#export a")) {
      a.href = apiUrl("/api/v1/export", { ...params, format: a.dataset.format }).toString();
    }
  }

  async run() {
    const seq = ++this.seq;
    const params = this.params();
    this.updateExportLinks(params);
    setPageState("loading");
    try {
      const [fg, top] = await Promise.all([
        getJSON("/api/v1/flamegraph", params),
        getJSON("/api/v1/top", { ...params, limit: TOP_LIMIT }),
      ]);
      if (seq !== this.seq) return;     // a newer query is under way
      showError(null);
      this.total = fg.total;
      this.unit = fg.unit;
      this.flame.setData(fg.flamegraph, this.app.state.zoom);
      this.top.setData(top.rows, top.total, top.unit);
      this.applySearch();
      this.showZoom();
      this.showSummary(fg, top);
      setPageState("ready");
    } catch (e) {
      if (seq !== this.seq) return;
      showError(e);
      setPageState("error");
    }
  }

  showSummary(fg, top) {
    const parts = [
      el("span", { class: "ptype", title: fg.profile_type || "" }, typeLabel(fg.profile_type || "")),
      el("span", {}, `total ${formatValue(fg.total, fg.unit)}`),
      el("span", {}, `${fg.profiles} profile${fg.profiles === 1 ? "" : "s"}`),
      el("span", {}, `${fg.nodes} nodes`),
    ];
    if (fg.duration_nanos) parts.push(el("span", {}, `duration ${formatValue(fg.duration_nanos, "nanoseconds")}`));
    setChildren($("summary"), ...parts);
    const shown = Math.min(top.rows.length, top.rows_total);
    $("top-info").textContent = top.rows_total > shown ? `top ${shown} of ${top.rows_total}` : `${top.rows_total} rows`;
  }

  describe(nd) {
    const fmt = (v) => formatValue(v, this.unit);
    const parent = nd.parent >= 0 ? this.flame.nodes[nd.parent] : null;
    const rows = [
      ["Self", `${fmt(nd.raw.self)} (${percent(nd.raw.self, this.total)})`],
      ["Total", `${fmt(nd.raw.total)} (${percent(nd.raw.total, this.total)})`],
      ["Share of total", percent(nd.raw.total, this.total)],
    ];
    if (parent) rows.push(["Share of parent", percent(nd.raw.total, parent.raw.total)]);
    return rows;
  }

  showZoom() {
    const path = this.flame.zoomPath();
    $("reset-zoom").disabled = path.length === 0;
    $("zoom-info").textContent = path.length ? `zoomed into ${path[path.length - 1]}` : "";
  }

  applySearch() {
    const text = this.app.state.search;
    const stats = this.flame.setSearch(searchRegex(text));
    $("search-info").textContent = text ? `${stats.count} match${stats.count === 1 ? "" : "es"}, `
      + `${(100 * stats.share).toFixed(2)}% of total` : "";
    const exact = this.top.rows.find((r) => text === `^${escapeRegex(r.name)}$`);
    this.top.setSelected(exact ? exact.name : null);
  }

  /** A top-table row was clicked: highlight exactly that function in the flame graph. */
  selectFunction(name) {
    const st = this.app.state;
    st.search = st.search === `^${escapeRegex(name)}$` ? "" : `^${escapeRegex(name)}$`;
    $("search").value = st.search;
    writeState(st);
    this.applySearch();
  }
}

class App {
  constructor() {
    this.state = readState();
    setTenant(this.state.tenant);
    this.single = new SingleView(this);
    this.diff = null;
    this.linkTabs();
    window.addEventListener("popstate", () => {
      this.state = readState();
      this.route();
    });
  }

  route() {
    const diff = this.state.view === "diff";
    $("single-view").hidden = diff;
    $("diff-view").hidden = !diff;
    $("export").hidden = diff;
    $("tab-single").classList.toggle("current", !diff);
    $("tab-diff").classList.toggle("current", diff);
    if (diff) {
      if (!this.diff) this.diff = new DiffView(this);
      return this.diff.start();
    }
    return this.single.start();
  }

  /** The tabs carry the selection over: single view <-> base (and head) of the diff view. */
  linkTabs() {
    $("tab-diff").addEventListener("click", (e) => {
      const s = this.state;
      if (s.view === "diff") return;
      e.currentTarget.href = stateQuery({ view: "diff", type: s.type, granularity: s.granularity, tenant: s.tenant,
        bquery: s.query, bfrom: s.from, buntil: s.until, hquery: s.query, hfrom: s.from, huntil: s.until });
    });
    $("tab-single").addEventListener("click", (e) => {
      const s = this.state;
      if (s.view !== "diff") return;
      e.currentTarget.href = stateQuery({ type: s.type, granularity: s.granularity, tenant: s.tenant,
        query: s.bquery, from: s.bfrom, until: s.buntil });
    });
  }
}

const app = new App();
app.route();
