// Flame graph as absolutely positioned divs, "icicle" style: the root ("total") is the top row and
// callees hang below their callers. Widths are proportional to the node's value (percent of the
// zoomed node, so the graph follows the window width without redrawing).

import { el, setChildren } from "./dom.js";

const ROW = 18;            // px per stack level
const MIN_PX = 0.5;        // nodes narrower than this are not drawn (nor their children)

/**
 * Flatten a nested {name, children} tree in pre-order. `weight(raw)` gives the drawing width
 * value (clamped at 0: negative delta values cannot be drawn as widths).
 */
function flatten(root, weight) {
  const nodes = [];
  const stack = [[root, -1, 0, 0]];
  while (stack.length) {
    const [raw, parent, depth, start] = stack.pop();
    const i = nodes.length;
    const value = Math.max(0, weight(raw));
    nodes.push({ name: String(raw.name), value, start, depth, parent, end: i + 1, raw });
    const kids = raw.children || [];
    let offset = start;
    const starts = kids.map((k) => {
      const s = offset;
      offset += Math.max(0, weight(k));
      return s;
    });
    for (let j = kids.length - 1; j >= 0; j--) stack.push([kids[j], i, depth + 1, starts[j]]);
  }
  for (let i = nodes.length - 1; i > 0; i--) {   // subtree ends, children before parents
    const p = nodes[i].parent;
    nodes[p].end = Math.max(nodes[p].end, nodes[i].end);
  }
  return nodes;
}

export class FlameGraph {
  /**
   * @param container element to draw in
   * @param opts.weight  raw node -> width value
   * @param opts.colour  flat node -> CSS colour
   * @param opts.describe flat node -> [[label, text], ...] rows for the tooltip
   * @param opts.tooltip the tooltip element
   * @param opts.onZoom  called with the zoom path (list of names below the root) after a click
   */
  constructor(container, opts) {
    this.container = container;
    this.opts = opts;
    this.nodes = [];
    this.zoom = 0;
    this.search = null;
    this.hovered = -1;
    this.canvas = el("div", { class: "fg-canvas" });
    container.replaceChildren(this.canvas);
    container.classList.add("flame");
    this.canvas.addEventListener("click", (e) => this.click(e));
    this.canvas.addEventListener("mousemove", (e) => this.move(e));
    this.canvas.addEventListener("mouseleave", () => this.hideTooltip());
    this.resizeObserver = new ResizeObserver(() => this.maybeRedraw());
    this.resizeObserver.observe(container);
    this.drawnWidth = 0;
  }

  /** New data; keeps the zoom on the same path of names when it still exists. */
  setData(root, zoomPath = []) {
    this.nodes = root ? flatten(root, this.opts.weight) : [];
    this.zoom = this.find(zoomPath);
    this.computeMatches();
    this.render();
  }

  /** Index of the node at `path` (names below the root), or the deepest prefix found. */
  find(path) {
    let cur = 0;
    for (const name of path) {
      if (!this.nodes.length) return 0;
      let next = -1;
      for (let c = cur + 1; c < this.nodes[cur].end; c = this.nodes[c].end) {
        if (this.nodes[c].name === name) {
          next = c;
          break;
        }
      }
      if (next < 0) break;
      cur = next;
    }
    return cur;
  }

  /** Names from below the root down to the zoomed node. */
  zoomPath() {
    const path = [];
    for (let i = this.zoom; i > 0; i = this.nodes[i].parent) path.push(this.nodes[i].name);
    return path.reverse();
  }

  setZoom(index) {
    this.zoom = index;
    this.render();
    if (this.opts.onZoom) this.opts.onZoom(this.zoomPath());
  }

  /** Highlight frames whose name matches `re` (null clears). Returns {count, value, share}. */
  setSearch(re) {
    this.search = re;
    this.computeMatches();
    this.render();
    return this.matchStats;
  }

  computeMatches() {
    const n = this.nodes.length;
    this.matched = new Uint8Array(n);
    let count = 0;
    let value = 0;
    if (this.search && n) {
      const under = new Uint8Array(n);     // a matching ancestor: do not count twice
      for (let i = 0; i < n; i++) {
        const nd = this.nodes[i];
        if (nd.parent >= 0) under[i] = under[nd.parent] || this.matched[nd.parent];
        this.search.lastIndex = 0;
        if (i > 0 && this.search.test(nd.name)) {
          this.matched[i] = 1;
          count++;
          if (!under[i]) value += nd.value;
        }
      }
    }
    const total = n ? this.nodes[0].value : 0;
    this.matchStats = { count, value, share: total ? value / total : 0 };
  }

  maybeRedraw() {
    const w = this.container.clientWidth;
    if (this.nodes.length && Math.abs(w - this.drawnWidth) > 40) this.render();
  }

  render() {
    this.hideTooltip();
    const nodes = this.nodes;
    if (!nodes.length || nodes[0].value <= 0) {
      this.canvas.style.height = "";
      setChildren(this.canvas, el("div", { class: "fg-empty" }, "No samples match this selection."));
      this.container.dataset.nodes = "0";
      return;
    }
    const width = this.container.clientWidth || 1000;
    this.drawnWidth = width;
    const z = nodes[this.zoom];
    const minFrac = MIN_PX / width;
    const frag = document.createDocumentFragment();
    const searching = this.search !== null;
    let maxDepth = z.depth;
    let drawn = 0;
    const draw = (i, x, w, extra) => {
      const nd = nodes[i];
      let cls = "fg-node";
      if (extra) cls += ` ${extra}`;
      if (searching) cls += this.matched[i] ? " fg-match" : " fg-dim";
      if (w * width < 28) cls += w * width < 3 ? " fg-narrow fg-tiny" : " fg-narrow";
      const div = el("div", {
        class: cls,
        dataset: { index: i, name: nd.name, depth: nd.depth },
        style: { left: `${x * 100}%`, width: `${w * 100}%`, top: `${nd.depth * ROW}px`,
          backgroundColor: this.opts.colour(nd) },
      }, nd.name);
      frag.append(div);
      drawn++;
    };
    for (let a = z.parent; a >= 0; a = nodes[a].parent) draw(a, 0, 1, "fg-ancestor");
    for (let i = this.zoom; i < z.end;) {
      const nd = nodes[i];
      const w = nd.value / z.value;
      if (w < minFrac) {
        i = nd.end;   // too narrow to see: skip the whole subtree
        continue;
      }
      draw(i, (nd.start - z.start) / z.value, w, i === this.zoom && i > 0 ? "fg-zoomed" : "");
      if (nd.depth > maxDepth) maxDepth = nd.depth;
      i++;
    }
    this.canvas.style.height = `${(maxDepth + 1) * ROW}px`;
    this.canvas.replaceChildren(frag);
    this.container.dataset.nodes = String(drawn);
    this.container.dataset.zoom = z.name;
  }

  nodeAt(e) {
    const div = e.target.closest(".fg-node");
    return div ? Number(div.dataset.index) : -1;
  }

  click(e) {
    const i = this.nodeAt(e);
    if (i >= 0 && i !== this.zoom) this.setZoom(i);
  }

  move(e) {
    const i = this.nodeAt(e);
    const tip = this.opts.tooltip;
    if (i < 0) return this.hideTooltip();
    if (i !== this.hovered) {
      this.hovered = i;
      const nd = this.nodes[i];
      setChildren(tip, el("div", { class: "tt-name" }, nd.name),
        el("table", {}, ...this.opts.describe(nd).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))));
      tip.hidden = false;
    }
    const pad = 14;
    const r = tip.getBoundingClientRect();
    let x = e.clientX + pad;
    let y = e.clientY + pad;
    if (x + r.width > window.innerWidth - 4) x = Math.max(4, e.clientX - pad - r.width);
    if (y + r.height > window.innerHeight - 4) y = Math.max(4, e.clientY - pad - r.height);
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
    return undefined;
  }

  hideTooltip() {
    this.hovered = -1;
    if (this.opts.tooltip) this.opts.tooltip.hidden = true;
  }
}
