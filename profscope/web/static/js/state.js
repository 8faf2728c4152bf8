// The view state lives in the URL query string, so any view can be shared by copying the link.

export const DEFAULTS = Object.freeze({
  view: "single",        // "single" | "diff"
  type: "",              // profile type id, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds
  query: "",             // label selector, e.g. {service_name="api"}
  from: "",              // now-1h, unix time or ISO 8601; empty = no bound
  until: "",
  granularity: "functions",
  focus: "",
  ignore: "",
  search: "",            // flame graph highlight (regex, or literal text if not a valid regex)
  sort: "",              // top table: "<column>:asc|desc"; empty = the API's pprof order
  bquery: "", bfrom: "", buntil: "",   // diff: base selection
  hquery: "", hfrom: "", huntil: "",   // diff: head selection
  tenant: "",            // X-Scope-OrgID for multi-tenant servers
});

/** The state in the current URL: DEFAULTS overridden by the query string; `zoom` is a list. */
export function readState() {
  const params = new URLSearchParams(location.search);
  const state = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) {
    const v = params.get(key);
    if (v !== null) state[key] = v;
  }
  state.zoom = params.getAll("zoom");
  return state;
}

/** The query string of `state` (defaults left out, so links stay short). */
export function stateQuery(state) {
  const params = new URLSearchParams();
  for (const [key, def] of Object.entries(DEFAULTS)) {
    const v = state[key];
    if (v !== undefined && v !== null && v !== def) params.set(key, v);
  }
  for (const name of state.zoom || []) params.append("zoom", name);
  const q = params.toString();
  return q ? `?${q}` : location.pathname;
}

/** Put `state` in the address bar; `push` adds a history entry (back button), else replaces. */
export function writeState(state, push = false) {
  const target = stateQuery(state);
  if (target === location.search || (target === location.pathname && !location.search)) return;
  if (push) history.pushState(null, "", target);
  else history.replaceState(null, "", target);
}

/** `type` + `{selector}`, the `query` parameter the API expects. */
export function apiQuery(type, selector) {
  const sel = (selector || "").trim();
  return `${type || ""}${sel}`;
}
