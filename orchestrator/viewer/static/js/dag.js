// The DAG as SVG. Only what lies in (or near) the visible part of the scroll area
// is in the DOM, so a run of ten thousand steps draws as fast as one of fifty.

import { clip, fmtDuration, place, STATUSES, svg } from "./dom.js";
import { Grid } from "./grid.js";
import { NODE_H } from "./layout.js";

const MARGIN = 300; // px around the viewport drawn ahead of scrolling

function stepDuration(s, now) {
  if (!s || !s.attempts.length) return null;
  const a0 = s.attempts[0];
  const last = s.attempts[s.attempts.length - 1];
  return (last.end ?? now) - a0.start;
}

export class DagView {
  /**
   * @param {HTMLElement} scroller  the scrolling container
   * @param {{onSelect: Function, onToggle: Function}} handlers
   */
  constructor(scroller, handlers) {
    this.scroller = scroller;
    this.handlers = handlers;
    this.scale = 1;
    this.layout = null;
    this.state = null;
    this.tree = null;
    this.expanded = new Set();
    this.frames = null;
    this.critical = new Set();
    this.criticalEdges = new Set();
    this.selected = null;
    this.drawnSteps = new Map(); // id -> {key, g}: each step element in the DOM and its look
    this.drawnEdges = new Map(); // edge key -> {key, path}
    this.root = svg("svg", { class: "dag-svg", role: "img", "aria-label": "Graph of the run's steps" });
    this.gBoxes = svg("g", { class: "boxes" });
    this.gEdges = svg("g", { class: "edges" });
    this.gNodes = svg("g", { class: "nodes" });
    const defs = svg("defs", null,
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerUnits: "userSpaceOnUse", markerWidth: "9", markerHeight: "9", orient: "auto-start-reverse" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" })),
      svg("marker", { id: "arrow-critical", viewBox: "0 0 10 10", refX: "9", refY: "5", markerUnits: "userSpaceOnUse", markerWidth: "9", markerHeight: "9", orient: "auto-start-reverse" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow critical" })));
    this.root.append(defs, this.gBoxes, this.gEdges, this.gNodes);
    scroller.append(this.root);
    this.pending = false;
    scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(scroller);
    this.root.addEventListener("click", (e) => {
      const toggle = e.target.closest("[data-toggle]");
      if (toggle) { this.handlers.onToggle(toggle.getAttribute("data-toggle")); return; }
      const node = e.target.closest("[data-step-id]");
      if (node) this.handlers.onSelect(node.getAttribute("data-step-id"));
    });
    this.root.addEventListener("keydown", (e) => {
      if (e.key !== "Enter" && e.key !== " ") return;
      const node = e.target.closest("[data-step-id]");
      if (node) { e.preventDefault(); this.handlers.onSelect(node.getAttribute("data-step-id")); }
    });
  }

  setLayout(layout, tree, expanded) {
    this.layout = layout;
    this.tree = tree;
    this.expanded = expanded;
    // what a frame draws is found through these (it tested every box and edge)
    this.boxList = [...layout.boxes];
    this.boxGrid = new Grid(this.boxList.map(([, b]) => b));
    this.edgeGrid = new Grid(layout.edges.map((e) => {
      const a = layout.boxes.get(e.from), b = layout.boxes.get(e.to);
      if (!a || !b) return { x: NaN, y: NaN, w: 0, h: 0 }; // meets no view: never drawn
      return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x) + a.w, h: Math.abs(a.y - b.y) + a.h };
    }));
    this.resize();
  }

  resize() {
    if (!this.layout) return;
    const w = Math.max(1, this.layout.width), h = Math.max(1, this.layout.height);
    this.root.setAttribute("viewBox", `0 0 ${w} ${h}`);
    this.root.setAttribute("width", String(Math.ceil(w * this.scale)));
    this.root.setAttribute("height", String(Math.ceil(h * this.scale)));
    this.schedule();
  }

  zoom(factor) {
    const s = this.scroller;
    const cx = (s.scrollLeft + s.clientWidth / 2) / this.scale;
    const cy = (s.scrollTop + s.clientHeight / 2) / this.scale;
    this.scale = Math.min(2.5, Math.max(0.05, factor === "fit" ? this.fitScale() : this.scale * factor));
    this.resize();
    s.scrollLeft = cx * this.scale - s.clientWidth / 2;
    s.scrollTop = cy * this.scale - s.clientHeight / 2;
  }

  fitScale() {
    if (!this.layout) return 1;
    const s = this.scroller;
    return Math.min(1, (s.clientWidth - 4) / this.layout.width, (s.clientHeight - 4) / this.layout.height);
  }

  /** Show the run in `state`, highlighting `critical` (ids, in order); `frames` (a
   * FrameIndex of the state) counts the statuses under a folded box. */
  update(state, critical, selected, frames = null) {
    this.state = state;
    this.frames = frames;
    this.selected = selected;
    this.critical = new Set(critical);
    this.criticalEdges = new Set();
    if (this.tree) {
      for (let i = 1; i < critical.length; i++) {
        const a = this.tree.visible(critical[i - 1], this.expanded), b = this.tree.visible(critical[i], this.expanded);
        this.criticalEdges.add(`${a}\u0000${b}`);
      }
    }
    this.draw(); // now: the caller renders in an animation frame already
  }

  /** Scroll so that a step is in view. */
  reveal(id) {
    const box = this.layout?.boxes.get(this.tree.visible(id, this.expanded));
    if (!box) return;
    const s = this.scroller;
    const x = box.x * this.scale, y = box.y * this.scale;
    if (x < s.scrollLeft || x + box.w * this.scale > s.scrollLeft + s.clientWidth) s.scrollLeft = x - 40;
    if (y < s.scrollTop || y + box.h * this.scale > s.scrollTop + s.clientHeight) s.scrollTop = y - 40;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  /** Draw what lies in view. An element drawn in the frame before whose look did not
   * change (its place, status, classes, texts and child bar) is kept as it is, and the
   * groups are only reordered where they differ: playback, which folds a few events per
   * frame, touches the DOM of the few steps those events changed (it built every step
   * and edge in view again in each frame). */
  draw() {
    if (!this.layout || !this.state) return;
    const s = this.scroller, k = this.scale;
    const x0 = (s.scrollLeft - MARGIN) / k, y0 = (s.scrollTop - MARGIN) / k;
    const x1 = (s.scrollLeft + s.clientWidth + MARGIN) / k, y1 = (s.scrollTop + s.clientHeight + MARGIN) / k;
    const steps = this.state.steps;
    const boxes = [], nodes = [], edges = [];
    const drawnSteps = new Map(), drawnEdges = new Map();
    for (const i of this.boxGrid.query(x0, y0, x1, y1)) { // in view, in the layout's order
      const [id, b] = this.boxList[i];
      const st = steps.get(id);
      if (!st) continue; // not added yet at this moment
      const look = this.stepLook(id, b, st);
      const was = this.drawnSteps.get(id);
      const drawn = was && was.key === look.key ? was : { key: look.key, g: this.drawStep(id, b, st, look) };
      drawnSteps.set(id, drawn);
      (b.open ? boxes : nodes).push(drawn.g);
    }
    for (const i of this.edgeGrid.query(x0, y0, x1, y1)) {
      const e = this.layout.edges[i];
      if (!steps.has(e.from) || !steps.has(e.to)) continue;
      const look = this.edgeLook(e, this.layout.boxes.get(e.from), this.layout.boxes.get(e.to));
      const was = this.drawnEdges.get(e.key);
      const drawn = was && was.key === look.key ? was : { key: look.key, path: this.drawEdge(e, look) };
      drawnEdges.set(e.key, drawn);
      edges.push(drawn.path);
    }
    // a step drawn anew keeps the keyboard's focus its element had
    const active = document.activeElement;
    const focused = active && this.root.contains(active) ? active.closest("[data-step-id]") : null;
    this.drawnSteps = drawnSteps;
    this.drawnEdges = drawnEdges;
    place(this.gBoxes, boxes);
    place(this.gEdges, edges);
    place(this.gNodes, nodes);
    if (focused && !focused.isConnected) {
      drawnSteps.get(focused.getAttribute("data-step-id"))?.g.focus({ preventScroll: true });
    }
    this.root.dataset.drawnNodes = String(boxes.length + nodes.length);
  }

  /** What an edge's path shows: its curve, and whether it is on the critical path. */
  edgeLook(e, a, b) {
    const x1 = a.x + a.w, y1 = a.open ? a.y + 14 : a.y + a.h / 2;
    const x2 = b.x, y2 = b.open ? b.y + 14 : b.y + b.h / 2;
    const dx = Math.max(24, (x2 - x1) / 2);
    const d = `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2 - 1} ${y2}`;
    const critical = this.criticalEdges.has(e.key);
    return { d, critical, key: `${d}|${critical ? 1 : 0}` };
  }

  drawEdge(e, look) {
    return svg("path", {
      d: look.d,
      class: look.critical ? "edge critical" : "edge",
      "marker-end": look.critical ? "url(#arrow-critical)" : "url(#arrow)",
      "data-edge": `${e.from}\u2192${e.to}`,
    });
  }

  /** Everything a step's element shows, and `key`: a text that differs whenever any of
   * it does (its box, status, classes, texts, child count and bar). */
  stepLook(id, b, s) {
    const status = STATUSES.includes(s.status) ? s.status : "pending";
    const classes = ["step", b.open ? "group" : "node", `st-${status}`,
      this.critical.has(id) && "critical", this.selected === id && "selected",
      s.replanned && "replanned", !s.declared && s.addedBy !== null && "added"].filter(Boolean).join(" ");
    const kids = this.tree.kids(id).length;
    const dur = stepDuration(s, this.state.ts);
    const meta = [s.kind || "step", status, dur !== null ? fmtDuration(dur) : null, s.attempts.length > 1 ? `\u00d7${s.attempts.length}` : null]
      .filter(Boolean).join(" \u00b7 ");
    const size = kids ? this.tree.size.get(id) : 0;
    const counts = kids && !b.open ? this.countsUnder(id) : null;
    const bar = counts ? STATUSES.map((st) => counts.get(st) || 0).join(",") : "";
    const key = [b.x, b.y, b.w, b.h, b.open ? 1 : 0, classes, meta, kids, size, bar].join("\u0000");
    return { status, classes, meta, kids, size, counts, key };
  }

  drawStep(id, b, s, look) {
    const { status, classes, meta, kids } = look;
    const g = svg("g", { class: classes, "data-step-id": id, "data-status": status, transform: `translate(${b.x},${b.y})`, tabindex: "0" },
      svg("title", null, `${id}\n${meta}${s.replanned ? "\nadded by replanning" : ""}`));
    if (b.open) {
      g.append(
        svg("rect", { class: "group-box", width: b.w, height: b.h, rx: 8 }),
        svg("rect", { class: "group-head", width: b.w, height: 26, rx: 8 }),
        svg("rect", { class: "strip", width: 5, height: 26, rx: 2 }),
        svg("text", { class: "label", x: 30, y: 17 }, clip(`${s.replanned ? "\u21bb " : ""}${id}`, Math.floor((b.w - 150) / 7) + 12)),
        svg("text", { class: "meta", x: b.w - 10, y: 17, "text-anchor": "end" }, clip(meta, 28)),
        this.toggle(id, "\u2212", 6, 5),
      );
    } else {
      g.append(
        svg("rect", { class: "box", width: b.w, height: NODE_H, rx: 6 }),
        svg("rect", { class: "strip", width: 5, height: NODE_H, rx: 2 }),
        svg("text", { class: "label", x: 12, y: 18 }, clip(`${s.replanned ? "\u21bb " : ""}${id}`, kids ? 17 : 22)),
        svg("text", { class: "meta", x: 12, y: 34 }, clip(meta, 27)),
      );
      if (kids) {
        g.append(this.toggle(id, `+${look.size}`, b.w - 44, 6, 38));
        g.append(this.childBar(look.counts, b.w));
      }
    }
    return g;
  }

  toggle(id, label, x, y, w = 18) {
    return svg("g", { class: "toggle", "data-toggle": id, transform: `translate(${x},${y})`, role: "button", "aria-label": `expand or collapse ${id}` },
      svg("rect", { width: w, height: 16, rx: 4 }),
      svg("text", { x: w / 2, y: 12, "text-anchor": "middle" }, label));
  }

  /** The statuses of a collapsed box's descendants: status -> how many. */
  countsUnder(id) {
    if (this.frames && this.frames.state === this.state && this.frames.tree === this.tree) {
      return this.frames.countsUnder(id); // kept as events come (it walked them all each frame)
    }
    const counts = new Map();
    const walk = (p) => {
      for (const c of this.tree.kids(p)) {
        const s = this.state.steps.get(c);
        if (s) counts.set(s.status, (counts.get(s.status) || 0) + 1);
        walk(c);
      }
    };
    walk(id);
    return counts;
  }

  /** A collapsed box's descendants as a bar of statuses (`counts`: see countsUnder). */
  childBar(counts, width) {
    let total = 0;
    for (const n of counts.values()) total += n;
    const g = svg("g", { class: "childbar", transform: `translate(6,${NODE_H - 5})` });
    let x = 0;
    const w = width - 12;
    for (const st of STATUSES) {
      const n = counts.get(st);
      if (!n) continue;
      g.append(svg("rect", { class: `seg st-${st}`, x, width: (w * n) / total, height: 3 }));
      x += (w * n) / total;
    }
    return g;
  }
}
