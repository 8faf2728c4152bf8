// Page-wide pieces shared by the views: the error banner and the page state.

import { el, setChildren } from "./dom.js";

/** Show an API (or any) error in the banner; `null` hides it. */
export function showError(err) {
  const box = document.getElementById("error");
  if (!err) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const kind = err.kind ? ` (${err.kind})` : "";
  setChildren(box, el("strong", {}, `Error${kind}: `),
    el("span", { class: "error-message" }, err.message || String(err)),
    el("button", { type: "button", class: "close", "aria-label": "dismiss", onclick: () => showError(null) }, "×"));
  box.hidden = false;
}

/** Mark the page loading / ready / error (`#app[data-state]`, what the browser tests wait for). */
export function setPageState(s) {
  document.getElementById("app").dataset.state = s;
}

export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
