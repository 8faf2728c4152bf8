// Tiny DOM helpers. Data only ever enters the page as text (textContent / attributes), never as
// HTML: no HTML-parsing DOM sink is used anywhere in this UI (a test checks).

/**
 * el("div", {class: "x", dataset: {name: "y"}, onclick: fn}, "text", childNode, ...)
 * Strings among the children become text nodes.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "style") Object.assign(node.style, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return node;
}

/** Replace all children of `node` with `children` (text or nodes). */
export function setChildren(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (typeof c === "string" || typeof c === "number" ? String(c) : c)));
}

/** A <select> with options [value, label] (or plain strings). */
export function fillSelect(select, options, value) {
  setChildren(select, ...options.map((o) => {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    return el("option", { value: v }, label);
  }));
  if (value !== undefined) select.value = value;
}
