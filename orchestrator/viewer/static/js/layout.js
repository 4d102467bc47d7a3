// Layered layout of a run's DAG, left to right, with nested graphs as boxes.
//
// Steps with a parent (a map's items, a planner's steps, a spawn's children) are
// drawn inside their parent's box when it is expanded, or folded into the parent's
// node when it is collapsed. Each level (the top, or the inside of one box) is laid
// out on its own by longest-path layering: a step's layer is one more than the
// deepest layer of the steps it waits for, so every edge points right. A box is
// one (large) node of the level around it. Pure: no DOM.

export const NODE_W = 172;
export const NODE_H = 44;
const GAP_X = 56; // between layers: room for the edges
const GAP_Y = 14;
const PAD = 12; // inside a box
const HEAD = 28; // a box's title bar
const MAX_COL_H = 2400; // a taller layer wraps into more columns

/** Parent/child structure of the steps (cycles in `parent` are cut). */
export class Tree {
  constructor(steps) {
    this.ids = [];
    this.parent = new Map();
    this.children = new Map();
    this.deps = new Map();
    this.index = new Map();
    for (const s of steps) {
      this.index.set(s.id, this.ids.length);
      this.ids.push(s.id);
    }
    for (const s of steps) {
      const p = s.parent && this.index.has(s.parent) && s.parent !== s.id ? s.parent : null;
      this.parent.set(s.id, p);
      this.deps.set(s.id, (s.deps || []).filter((d) => this.index.has(d) && d !== s.id));
    }
    // cut parent cycles: walking up must end at the top
    for (const id of this.ids) {
      const seen = new Set([id]);
      let p = this.parent.get(id);
      while (p !== null) {
        if (seen.has(p)) { this.parent.set(id, null); break; }
        seen.add(p);
        p = this.parent.get(p);
      }
    }
    this.ancestry = new Map(); // id -> [top-most ancestor, ..., id]
    for (const id of this.ids) {
      const chain = [id];
      for (let p = this.parent.get(id); p !== null; p = this.parent.get(p)) chain.push(p);
      this.ancestry.set(id, chain.reverse());
    }
    for (const id of this.ids) {
      const p = this.parent.get(id);
      if (!this.children.has(p)) this.children.set(p, []);
      this.children.get(p).push(id);
    }
    this.size = new Map(); // descendants
    for (const id of [...this.ids].sort((a, b) => this.ancestry.get(b).length - this.ancestry.get(a).length)) {
      const n = (this.children.get(id) || []).reduce((acc, c) => acc + 1 + this.size.get(c), 0);
      this.size.set(id, n);
    }
  }

  kids(id) { return this.children.get(id) || []; }
  depth(id) { return this.ancestry.get(id).length - 1; }

  /** Whether `a` is a proper ancestor of `b`. */
  isAncestor(a, b) {
    const ca = this.ancestry.get(a), cb = this.ancestry.get(b);
    return ca.length < cb.length && cb[ca.length - 1] === a;
  }

  /** The step that stands for `id` on screen: its top-most collapsed ancestor, or itself. */
  visible(id, expanded) {
    const chain = this.ancestry.get(id);
    if (!chain) return id; // no step of the graph (a dependency named that never came)
    for (let i = 0; i < chain.length - 1; i++) if (!expanded.has(chain[i])) return chain[i];
    return id;
  }
}

/** Longest-path layers of `members` given edges among them; cycles are broken. */
export function layers(members, preds) {
  const layer = new Map();
  const indeg = new Map();
  const succ = new Map();
  for (const m of members) { indeg.set(m, 0); succ.set(m, []); }
  for (const m of members) {
    for (const p of preds.get(m) || []) {
      indeg.set(m, indeg.get(m) + 1);
      succ.get(p).push(m);
    }
  }
  const queue = members.filter((m) => indeg.get(m) === 0);
  const done = new Set();
  let next = 0; // members in order, to break a cycle at the earliest one left
  let head = 0;
  while (done.size < members.length) {
    if (head >= queue.length) {
      while (done.has(members[next])) next++;
      queue.push(members[next]);
    }
    const m = queue[head++];
    if (done.has(m)) continue;
    done.add(m);
    let l = 0;
    for (const p of preds.get(m) || []) if (done.has(p) && layer.has(p)) l = Math.max(l, layer.get(p) + 1);
    layer.set(m, l);
    for (const s of succ.get(m)) {
      indeg.set(s, indeg.get(s) - 1);
      if (indeg.get(s) === 0 && !done.has(s)) queue.push(s);
    }
  }
  return layer;
}

/**
 * Lay out the whole graph.
 * @param {Tree} tree
 * @param {Set<string>} expanded  ids of the boxes drawn open
 * @returns {{boxes: Map, edges: Array, width: number, height: number}}
 *   boxes: id -> {x, y, w, h, open} for every step drawn (open: a box with its steps inside);
 *   edges: {from, to} between drawn steps, one per pair.
 */
export function layout(tree, expanded) {
  // Edges of each level: an edge u -> v belongs to the level where u's and v's
  // ancestries part; there it joins the two members that hold them.
  const levelPreds = new Map(); // level key (parent id or null) -> Map member -> [members]
  for (const v of tree.ids) {
    const av = tree.ancestry.get(v);
    for (const u of tree.deps.get(v)) {
      const au = tree.ancestry.get(u);
      let i = 0;
      while (i < au.length && i < av.length && au[i] === av[i]) i++;
      if (i >= au.length || i >= av.length) continue; // one holds the other
      const key = i === 0 ? null : au[i - 1];
      if (!levelPreds.has(key)) levelPreds.set(key, new Map());
      const preds = levelPreds.get(key);
      if (!preds.has(av[i])) preds.set(av[i], []);
      const list = preds.get(av[i]);
      if (!list.includes(au[i])) list.push(au[i]);
    }
  }

  const rel = new Map(); // id -> {x, y, w, h, open} relative to its level
  const inner = new Map(); // open id -> {w, h} of its level

  function level(key, members) {
    const size = new Map();
    for (const m of members) {
      if (tree.kids(m).length && expanded.has(m)) {
        const box = level(m, tree.kids(m));
        inner.set(m, box);
        size.set(m, { w: Math.max(NODE_W, box.w + 2 * PAD), h: HEAD + box.h + PAD, open: true });
      } else {
        size.set(m, { w: NODE_W, h: NODE_H, open: false });
      }
    }
    const preds = levelPreds.get(key) || new Map();
    const layer = layers(members, preds);
    const byLayer = [];
    for (const m of members) {
      const l = layer.get(m);
      (byLayer[l] ||= []).push(m);
    }
    // order each layer by where its members' predecessors sit (barycentre)
    const pos = new Map();
    let x = 0;
    let height = 0;
    const columns = [];
    for (const group of byLayer) {
      if (!group) continue;
      const bary = new Map();
      group.forEach((m) => {
        const ps = (preds.get(m) || []).filter((p) => pos.has(p));
        // steps with nothing to follow keep their order, after the others
        bary.set(m, ps.length ? ps.reduce((a, p) => a + pos.get(p), 0) / ps.length : Infinity);
      });
      const order = group.map((m, i) => [m, i]);
      order.sort((a, b) => {
        const ba = bary.get(a[0]), bb = bary.get(b[0]);
        if (ba === bb) return a[1] - b[1];
        return ba - bb;
      });
      // stack, wrapping into several columns when the layer is very tall
      let col = { x, w: 0, items: [], h: 0 };
      const cols = [col];
      for (const [m] of order) {
        const s = size.get(m);
        if (col.items.length && col.h + s.h > MAX_COL_H) {
          x += col.w + GAP_X / 2;
          col = { x, w: 0, items: [], h: 0 };
          cols.push(col);
        }
        col.items.push([m, col.h]);
        col.h += s.h + GAP_Y;
        col.w = Math.max(col.w, s.w);
      }
      x += col.w + GAP_X;
      for (const c of cols) {
        c.h -= GAP_Y;
        height = Math.max(height, c.h);
        columns.push(c);
        for (const [m, y] of c.items) pos.set(m, y + size.get(m).h / 2);
      }
    }
    for (const c of columns) {
      const dy = (height - c.h) / 2;
      for (const [m, y] of c.items) {
        const s = size.get(m);
        rel.set(m, { x: c.x + (c.w - s.w) / 2, y: y + dy, w: s.w, h: s.h, open: s.open });
      }
    }
    return { w: Math.max(0, x - GAP_X), h: height };
  }

  const top = level(null, tree.kids(null));
  const boxes = new Map();
  function place(members, ox, oy) {
    for (const m of members) {
      const r = rel.get(m);
      const b = { x: r.x + ox, y: r.y + oy, w: r.w, h: r.h, open: r.open };
      boxes.set(m, b);
      if (r.open) {
        const box = inner.get(m);
        place(tree.kids(m), b.x + (b.w - box.w) / 2, b.y + HEAD);
      }
    }
  }
  const MARGIN = 16;
  place(tree.kids(null), MARGIN, MARGIN);

  const edges = [];
  const seen = new Set();
  for (const v of tree.ids) {
    const b = tree.visible(v, expanded);
    for (const u of tree.deps.get(v)) {
      const a = tree.visible(u, expanded);
      if (a === b || tree.isAncestor(a, b) || tree.isAncestor(b, a)) continue;
      const key = `${a}\u0000${b}`;
      if (seen.has(key)) continue;
      seen.add(key);
      edges.push({ from: a, to: b, key });
    }
  }
  return { boxes, edges, width: top.w + 2 * MARGIN, height: top.h + 2 * MARGIN, head: HEAD };
}
