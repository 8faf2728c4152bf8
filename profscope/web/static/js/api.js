// Talking to the profscope API. Every error the server sends is {"error": {"kind", "message"}};
// it surfaces here as an ApiError carrying that message.

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

let tenant = "";

/** Send `X-Scope-OrgID: id` with every request (multi-tenant servers). */
export function setTenant(id) {
  tenant = id || "";
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  if (tenant) h["X-Scope-OrgID"] = tenant;
  return h;
}

/** `path?params` with empty values left out; arrays become repeated parameters. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(k, item);
    }
  }
  return url;
}

async function answer(resp) {
  let body = null;
  const text = await resp.text();
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const err = body && typeof body === "object" && body.error;
    const message = err && err.message ? String(err.message)
      : `HTTP ${resp.status} ${resp.statusText || ""}`.trim();
    throw new ApiError(resp.status, err && err.kind ? String(err.kind) : "http_error", message);
  }
  if (body === null) throw new ApiError(resp.status, "bad_response", "the server answered without a JSON body");
  return body;
}

async function send(url, init) {
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, "network", `cannot reach the server: ${e.message}`);
  }
  return answer(resp);
}

export function getJSON(path, params = {}, signal = undefined) {
  return send(apiUrl(path, params), { headers: headers(), signal });
}

export function postJSON(path, data, signal = undefined) {
  return send(new URL(path, location.origin), {
    method: "POST", headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(data), signal,
  });
}

/** Download `url` with the tenant header (plain links cannot send headers). */
export async function download(url, filename) {
  const resp = await fetch(url, { headers: headers() });
  if (!resp.ok) await answer(resp);
  const blob = await resp.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
