// The query bar: profile type, label selector with label name/value hints, time range,
// granularity, focus/ignore regexes.

import { getJSON } from "./api.js";
import { el, fillSelect } from "./dom.js";

export const GRANULARITIES = ["functions", "files", "lines", "addresses"];
const TIME_PRESETS = ["now-5m", "now-15m", "now-1h", "now-6h", "now-24h", "now-7d", "now-30d", "now"];
const NAME = "[A-Za-z_.][A-Za-z0-9_.]*";
const NAME_CONTEXT = new RegExp(`(?:^|[{,])\\s*(${NAME})?$`);
const VALUE_CONTEXT = new RegExp(`(${NAME})\\s*(?:=~|!~|!=|=)\\s*"((?:[^"\\\\]|\\\\.)*)$`);
const MAX_HINTS = 50;

/** "process_cpu:cpu:nanoseconds:cpu:nanoseconds" -> "process_cpu · cpu (nanoseconds)". */
export function typeLabel(id) {
  const p = id.split(":");
  return p.length === 5 ? `${p[0]} · ${p[1]} (${p[2]})` : id;
}

/** Fill a profile-type <select>; an unknown `selected` (e.g. from a shared link) is kept. */
export function fillTypes(select, types, selected) {
  const all = selected && !types.includes(selected) ? [selected, ...types] : types;
  fillSelect(select, all.map((t) => [t, typeLabel(t)]), selected || all[0] || "");
  select.title = select.value;
}

/** Is the caret inside a quoted value? Returns the text before it split at the open quote. */
function openQuote(before) {
  let inQuote = false;
  let start = -1;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (inQuote && c === "\\") i++;
    else if (c === '"') {
      inQuote = !inQuote;
      start = i;
    }
  }
  return inQuote ? start : -1;
}

function quoteValue(v) {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/**
 * Suggestions under a label selector input: label names after `{` or `,`, values inside quotes.
 * `context()` gives {type, from, until} to scope the suggestions.
 */
class SelectorHints {
  constructor(input, context) {
    this.input = input;
    this.context = context;
    this.list = el("ul", { class: "hints", role: "listbox", hidden: true });
    this.items = [];
    this.active = -1;
    this.cache = new Map();
    this.seq = 0;
    input.setAttribute("autocomplete", "off");
    input.addEventListener("input", () => this.update());
    input.addEventListener("focus", () => this.update());
    input.addEventListener("click", () => this.update());
    input.addEventListener("blur", () => setTimeout(() => this.hide(), 150));
    input.addEventListener("keydown", (e) => this.key(e));
  }

  async fetchCached(path, params) {
    const key = `${path}?${new URLSearchParams(params)}`;
    if (!this.cache.has(key)) {
      this.cache.set(key, getJSON(path, params).catch((e) => {
        this.cache.delete(key);
        throw e;
      }));
    }
    return this.cache.get(key);
  }

  /** What the caret is in: {kind: "name"|"value", partial, label, start}. */
  where() {
    const text = this.input.value;
    const caret = this.input.selectionStart ?? text.length;
    const before = text.slice(0, caret);
    const q = openQuote(before);
    if (q >= 0) {
      const m = before.match(VALUE_CONTEXT);
      if (!m) return null;
      return { kind: "value", label: m[1], partial: before.slice(q + 1), start: q + 1, caret };
    }
    const body = before.trimStart().startsWith("{") || before.trim() === "" ? before : null;
    if (body === null) return null;
    const m = body.match(NAME_CONTEXT);
    if (!m) return null;
    const partial = m[1] || "";
    return { kind: "name", partial, start: caret - partial.length, caret };
  }

  async update() {
    const at = this.where();
    const seq = ++this.seq;
    if (!at) return this.hide();
    const ctx = this.context();
    const params = { profile_type: ctx.type, from: ctx.from, until: ctx.until };
    let options;
    try {
      if (at.kind === "name") {
        options = (await this.fetchCached("/api/v1/labels", params)).names;
      } else {
        const path = `/api/v1/labels/${encodeURIComponent(at.label)}/values`;
        options = (await this.fetchCached(path, params)).values;
      }
    } catch {
      return this.hide();   // hints are a convenience: the query itself reports errors
    }
    if (seq !== this.seq) return undefined;
    const p = at.partial.toLowerCase();
    const shown = options.filter((o) => o.toLowerCase().includes(p) && o !== at.partial).slice(0, MAX_HINTS);
    this.show(at, shown);
    return undefined;
  }

  show(at, options) {
    this.at = at;
    this.items = options;
    this.active = -1;
    if (!options.length || document.activeElement !== this.input) return this.hide();
    this.list.replaceChildren(...options.map((o, i) => el("li", {
      role: "option", dataset: { index: i },
      onmousedown: (e) => { e.preventDefault(); this.choose(i); },
    }, o)));
    this.list.hidden = false;
    return undefined;
  }

  hide() {
    this.list.hidden = true;
    this.items = [];
    this.active = -1;
  }

  choose(i) {
    const { at } = this;
    const text = this.input.value;
    let insert = this.items[i];
    let after = text.slice(at.caret);
    let head = text.slice(0, at.start);
    if (at.kind === "name") {
      if (!head.trim()) head = "{";
      after = after.replace(/^[A-Za-z0-9_.]*/, "");     // replace the whole name being edited
      if (!/^\s*(=~|!~|!=|=)/.test(after)) {             // no operator yet: start a value
        insert = `${insert}="`;
        after = `"${after.includes("}") ? "" : "}"}${after}`;
      }
    } else {
      insert = quoteValue(insert);
      const close = after.indexOf('"');
      after = close >= 0 && !after.slice(0, close).includes(",") ? after.slice(close) : `"${after}`;
      if (!after.includes("}")) after += "}";
    }
    this.input.value = head + insert + after;
    const caret = (head + insert).length + (at.kind === "value" ? 1 : 0);
    this.input.setSelectionRange(caret, caret);
    this.update();
  }

  key(e) {
    if (this.list.hidden || !this.items.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = this.items.length;
      this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      [...this.list.children].forEach((li, i) => li.classList.toggle("active", i === this.active));
    } else if ((e.key === "Enter" || e.key === "Tab") && this.active >= 0) {
      e.preventDefault();
      this.choose(this.active);
    } else if (e.key === "Escape") {
      this.hide();
    }
  }
}

function field(label, control, cls = "") {
  return el("label", { class: `field ${cls}`.trim() }, el("span", {}, label), control);
}

let presetsAdded = false;

function timePresets() {
  if (!presetsAdded) {
    document.body.append(el("datalist", { id: "time-presets" },
      ...TIME_PRESETS.map((t) => el("option", { value: t }))));
    presetsAdded = true;
  }
  return "time-presets";
}

/**
 * A query bar. `fields` picks the controls: type, selector, time, granularity, filters.
 * `names` maps the fields to state keys (e.g. query -> bquery for the diff's base side).
 */
export class QueryBar {
  constructor({ id, fields, names = {}, context = null, title = "" }) {
    this.names = { type: "type", query: "query", from: "from", until: "until", granularity: "granularity",
      focus: "focus", ignore: "ignore", ...names };
    this.controls = {};
    const parts = [];
    const c = this.controls;
    if (title) parts.push(el("span", { class: "bar-title" }, title));
    if (fields.includes("type")) {
      c.type = el("select", { id: `${id}-type`, name: "type", "aria-label": "profile type" });
      c.type.addEventListener("change", () => { c.type.title = c.type.value; });
      parts.push(field("Profile type", c.type, "type"));
    }
    if (fields.includes("selector")) {
      c.query = el("input", { id: `${id}-query`, type: "text", spellcheck: "false",
        placeholder: '{service_name="api"}', "aria-label": "label selector" });
      this.hints = new SelectorHints(c.query, context || (() => this.hintContext()));
      parts.push(field("Labels", el("span", { class: "hint-anchor" }, c.query, this.hints.list), "selector"));
    }
    if (fields.includes("time")) {
      const list = timePresets();
      c.from = el("input", { id: `${id}-from`, type: "text", list, placeholder: "now-1h", "aria-label": "from" });
      c.until = el("input", { id: `${id}-until`, type: "text", list, placeholder: "now", "aria-label": "until" });
      parts.push(field("From", c.from, "time"), field("Until", c.until, "time"));
    }
    if (fields.includes("granularity")) {
      c.granularity = el("select", { id: `${id}-granularity`, "aria-label": "granularity" });
      fillSelect(c.granularity, GRANULARITIES);
      parts.push(field("Granularity", c.granularity));
    }
    if (fields.includes("filters")) {
      c.focus = el("input", { id: `${id}-focus`, type: "text", spellcheck: "false", placeholder: "regex",
        "aria-label": "focus regex" });
      c.ignore = el("input", { id: `${id}-ignore`, type: "text", spellcheck: "false", placeholder: "regex",
        "aria-label": "ignore regex" });
      parts.push(field("Focus", c.focus, "regex"), field("Ignore", c.ignore, "regex"));
    }
    this.element = el("div", { class: "query-bar", id }, ...parts);
  }

  hintContext() {
    const c = this.controls;
    return { type: c.type ? c.type.value : "", from: c.from ? c.from.value.trim() : "",
      until: c.until ? c.until.value.trim() : "" };
  }

  /** Copy the bar's values into `state` (under this bar's state keys). */
  read(state) {
    for (const [key, ctl] of Object.entries(this.controls)) {
      state[this.names[key]] = ctl.tagName === "SELECT" ? ctl.value : ctl.value.trim();
    }
    return state;
  }

  /** Show `state`'s values in the bar. */
  write(state) {
    for (const [key, ctl] of Object.entries(this.controls)) {
      if (key === "type") continue;   // filled with the list of types by fillTypes
      ctl.value = state[this.names[key]] ?? "";
    }
  }
}
