// The timeline: one row per step, one bar per attempt (and a pale bar for the time
// it waited for a slot), so parallelism shows as overlapping bars. Rows outside
// the scrolled view are not in the DOM.

import { clip, fill, fmtDuration, place, svg } from "./dom.js";

const ROW_H = 20;
const LABEL_W = 190;
const AXIS_H = 24;
const OVERSCAN = 10;

function niceStep(span, target) {
  const raw = span / target;
  const pow = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

function firstActivity(s) {
  if (s.scheduledAt !== null) return s.scheduledAt;
  return s.attempts.length ? s.attempts[0].start : null;
}

export class GanttView {
  constructor(axisHost, scroller, handlers) {
    this.scroller = scroller;
    this.handlers = handlers;
    this.axis = svg("svg", { class: "gantt-axis", height: AXIS_H });
    axisHost.append(this.axis);
    this.root = svg("svg", { class: "gantt-svg" });
    scroller.append(this.root);
    this.order = [];
    this.rows = [];
    this.rank = new Map(); // id -> its place in order
    this.rowsOf = null; // {state, order, in: the set of rows}: what the rows were made for
    this.state = null;
    this.tree = null;
    this.critical = new Set();
    this.selected = null;
    this.drawnRows = new Map(); // id -> {key, g}: each row in the DOM and its look
    this.range = [0, 1];
    this.pending = false;
    // The scroller's size and scroll position, read again only once it scrolled or
    // was resized: read while drawing, after the graph was drawn in the same frame,
    // they made the browser lay the page out an extra time in each frame of playback.
    this.geometry = null;
    scroller.addEventListener("scroll", () => { this.geometry = null; this.schedule(); }, { passive: true });
    new ResizeObserver(() => { this.geometry = null; this.schedule(); }).observe(scroller);
    this.root.addEventListener("click", (e) => {
      const row = e.target.closest("[data-row]");
      if (row) this.handlers.onSelect(row.getAttribute("data-row"));
    });
  }

  /** Fix the row order and the time range from the run as read so far. */
  setTip(tip, tree, now) {
    this.tree = tree;
    const seen = this.tipSeen;
    if (!seen || seen.tip !== tip || seen.index !== tip.index) { // sorted again only when the tip moved
      const rows = [];
      let last = -Infinity; // the latest time a bar reaches
      for (const s of tip.steps.values()) {
        const t = firstActivity(s);
        if (t !== null) rows.push([t, s.firstSeq ?? 0, s.id]);
        for (const a of s.attempts) last = Math.max(last, a.start, a.end ?? -Infinity);
        for (const d of s.decisions) last = Math.max(last, d.ts);
        for (const p of s.planErrors) last = Math.max(last, p.ts);
      }
      rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      this.order = rows.map((r) => r[2]);
      this.rank = new Map(this.order.map((id, i) => [id, i]));
      this.tipSeen = { tip, index: tip.index, first: rows.length ? rows[0][0] : null, last };
    }
    // Events out of order in time (clocks of several processes) may put a step before
    // the run's start or past its end: the axis spans them too, or their bars were drawn
    // over the labels or past the right edge.
    const { first, last } = this.tipSeen;
    const t0 = Math.min(tip.run.startTs ?? Infinity, first ?? Infinity);
    const start = Number.isFinite(t0) ? t0 : 0;
    const t1 = Math.max(start + 1e-3, tip.run.endTs ?? now ?? tip.ts ?? start, last);
    this.range = [start, t1];
  }

  /** @param changed  the ids whose steps changed since the last call for the same
   * state (a FrameIndex's `changed`), or null when the state is another one */
  update(state, critical, selected, changed = null) {
    this.state = state;
    this.critical = new Set(critical);
    this.selected = selected;
    this.updateRows(state, changed);
    this.draw(); // now: the caller renders in an animation frame already
  }

  /** The rows at `state`: the steps of `order` active in it. The same state folded
   * forward (playback) adds the steps its events since named (`changed`); another
   * state, or another order, is filtered whole (each frame of playback filtered the
   * 66,000 steps of a long run). */
  updateRows(state, changed) {
    const seen = this.rowsOf;
    if (seen && seen.state === state && seen.order === this.order && changed !== null) {
      for (const id of changed) {
        if (seen.in.has(id) || !this.rank.has(id)) continue;
        const s = state.steps.get(id);
        if (!s || firstActivity(s) === null) continue;
        seen.in.add(id);
        const rank = this.rank.get(id);
        let lo = 0, hi = this.rows.length; // the first row ranked after it
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (this.rank.get(this.rows[mid]) < rank) lo = mid + 1; else hi = mid;
        }
        this.rows.splice(lo, 0, id);
      }
      return;
    }
    this.rows = this.order.filter((id) => {
      const s = state.steps.get(id);
      return s && firstActivity(s) !== null;
    });
    this.rowsOf = { state, order: this.order, in: new Set(this.rows) };
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  x(t, width) {
    const [t0, t1] = this.range;
    return LABEL_W + ((t - t0) / (t1 - t0)) * (width - LABEL_W - 12);
  }

  drawAxis(width) {
    const [t0, t1] = this.range;
    const span = t1 - t0;
    const step = niceStep(span, Math.max(2, Math.floor((width - LABEL_W) / 110)));
    const parts = [svg("text", { class: "axis-title", x: 8, y: 16 }, `${this.rows.length} steps \u00b7 ${fmtDuration(span)}`)];
    for (let t = 0; t <= span + 1e-9; t += step) {
      const x = this.x(t0 + t, width);
      parts.push(svg("line", { class: "tick", x1: x, x2: x, y1: AXIS_H - 6, y2: AXIS_H }));
      parts.push(svg("text", { class: "tick-label", x, y: 13, "text-anchor": "middle" }, fmtDuration(t)));
    }
    if (this.state?.ts != null) {
      const x = this.x(this.state.ts, width);
      parts.push(svg("path", { class: "now-mark", d: `M ${x - 5} ${AXIS_H - 8} L ${x + 5} ${AXIS_H - 8} L ${x} ${AXIS_H} z` }));
    }
    this.axis.setAttribute("width", String(width));
    fill(this.axis, parts);
  }

  /** The scroller's scrollTop, clientWidth and clientHeight (see `geometry`). */
  measure() {
    const s = this.scroller;
    this.geometry ??= { top: s.scrollTop, width: s.clientWidth, height: s.clientHeight };
    return this.geometry;
  }

  draw() {
    if (!this.state) return;
    const view = this.measure();
    const width = Math.max(LABEL_W + 200, view.width);
    const height = Math.max(ROW_H, this.rows.length * ROW_H);
    this.root.setAttribute("width", String(width));
    this.root.setAttribute("height", String(height));
    this.drawAxis(width);
    const first = Math.max(0, Math.floor(view.top / ROW_H) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((view.top + view.height) / ROW_H) + OVERSCAN);
    const now = this.state.ts;
    const parts = [];
    const drawnRows = new Map();
    for (let i = first; i < last; i++) {
      const id = this.rows[i];
      const look = this.rowLook(i, id, this.state.steps.get(id), width, now);
      const was = this.drawnRows.get(id);
      const drawn = was && was.key === look.key ? was : { key: look.key, g: this.drawRow(id, look) };
      drawnRows.set(id, drawn);
      parts.push(drawn.g);
    }
    if (now != null) {
      const x = this.x(now, width);
      parts.push(svg("line", { class: "now-line", x1: x, x2: x, y1: 0, y2: height }));
    }
    // A row that looks as it did in the frame before stays as it is: playback, whose
    // frames fold a few events, touches only the rows they changed (and the rows of
    // attempts still running, whose bars grow); every row in view was built again.
    this.drawnRows = drawnRows;
    place(this.root, parts);
    this.root.dataset.rows = String(this.rows.length);
  }

  /** Everything row `i` (step `id`, state `s`) shows, and `key`: a text that differs
   * whenever any of it does. */
  rowLook(i, id, s, width, now) {
    const critical = this.critical.has(id);
    const depth = this.tree ? Math.max(0, this.tree.ancestry.get(id)?.length - 1 || 0) : 0;
    const look = {
      y: i * ROW_H, width, depth, critical,
      classes: ["row", i % 2 && "odd", this.selected === id && "selected", critical && "critical"].filter(Boolean).join(" "),
      queued: null, attempts: [], decisions: [], planErrors: [],
    };
    if (s.scheduledAt !== null) {
      const qEnd = s.attempts.length ? s.attempts[0].start : now;
      const x1 = this.x(s.scheduledAt, width), x2 = this.x(qEnd, width);
      if (x2 - x1 > 0.5) look.queued = [x1, x2 - x1];
    }
    for (const a of s.attempts) {
      const x1 = this.x(a.start, width);
      const x2 = Math.max(x1 + 2, this.x(a.end ?? now, width));
      look.attempts.push([x1, x2 - x1, a.outcome, a.n, `${id} attempt ${a.n}: ${a.outcome}, ${fmtDuration((a.end ?? now) - a.start)}`]);
    }
    for (const d of s.decisions || []) {
      look.decisions.push([this.x(d.ts, width), d.action === "replan" ? "replan" : "finish",
        `round ${d.round}: ${d.by === "plan" ? "plan's answer" : "joiner"}: ${d.action}${d.reason ? ` (${d.reason})` : ""}`]);
    }
    for (const p of s.planErrors || []) {
      look.planErrors.push([this.x(p.ts, width), `${p.layer !== null ? `layer ${p.layer}` : `round ${p.round}`}: plan rejected (${p.code})`]);
    }
    look.key = JSON.stringify(look);
    return look;
  }

  drawRow(id, look) {
    const { width, depth, critical } = look;
    const g = svg("g", { class: look.classes, "data-row": id, transform: `translate(0,${look.y})` },
      svg("rect", { class: "row-bg", width, height: ROW_H }),
      svg("text", { class: "row-label", x: 8 + depth * 10, y: 14 }, clip(id, 24 - depth)),
      svg("title", null, id));
    if (look.queued) {
      const [x, w] = look.queued;
      g.append(svg("rect", { class: "queued", x, y: 8, width: w, height: 4 }));
    }
    for (const [x, w, outcome, n, title] of look.attempts) {
      g.append(svg("rect", { class: ["att", `o-${outcome}`, critical && "critical"], x, y: 3, width: w, height: ROW_H - 6, rx: 2, "data-attempt": String(n) },
        svg("title", null, title)));
    }
    for (const [x, action, title] of look.decisions) {
      g.append(svg("path", { class: `decision ${action}`, d: `M ${x} 2 L ${x + 5} 10 L ${x} 18 L ${x - 5} 10 z` },
        svg("title", null, title)));
    }
    for (const [x, title] of look.planErrors) {
      g.append(svg("path", { class: "decision rejected", d: `M ${x - 4} 6 L ${x + 4} 14 M ${x + 4} 6 L ${x - 4} 14` },
        svg("title", null, title)));
    }
    return g;
  }

  reveal(id) {
    const i = this.rows.indexOf(id);
    if (i < 0) return;
    const y = i * ROW_H, s = this.scroller;
    this.geometry = null;
    if (y < s.scrollTop || y + ROW_H > s.scrollTop + s.clientHeight) s.scrollTop = y - s.clientHeight / 2;
  }
}
