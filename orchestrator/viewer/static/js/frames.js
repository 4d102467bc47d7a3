// What a frame of the run page draws about every step at once: the status counts (of the
// run, and of the steps under each nested graph) and the critical path. Playback folds
// a few events per frame, yet counting statuses and finding the step that ended last
// walked every step of the state each frame (66,000 for a long run, and as many again
// for the children of its plan step). A FrameIndex keeps them up to date from the steps
// the events since the last frame named, and computes them whole only for another state
// (a position moved to backward, a keyframe), another graph, or a change it cannot
// follow. Its answers equal those of critical.js's `criticalPath` and of counting every
// step (tests/viewer/js/frames_check.js compares them at random positions).

import { criticalPath, latestOf, walkPath } from "./critical.js";
import { lastEnd } from "./fold.js";

/** Steps among which the one that ends last is wanted (every step of the state, or the
 * children of one step), ranked as the reference walks them (first wins a tie). */
class Group {
  constructor() {
    this.maxEnd = -Infinity; // the latest end of an ended attempt among them
    this.first = null; // the first step (by rank) with that end
    this.firstRank = Infinity;
    this.running = new Map(); // id -> rank of the steps with an attempt running
  }

  /** Step `id` (of rank `rank`) ends at `end` (never lower than before) and runs or not. */
  set(id, rank, end, running) {
    if (end > this.maxEnd) {
      this.maxEnd = end;
      this.first = id;
      this.firstRank = rank;
    } else if (end === this.maxEnd && end !== -Infinity && rank < this.firstRank) {
      this.first = id;
      this.firstRank = rank;
    }
    if (running) this.running.set(id, rank); else this.running.delete(id);
  }

  /** The step that ends last at time `now` (a running attempt ends at `now`), the first
   * of those that end then; null when none has an attempt. */
  latest(now) {
    const live = now !== null && this.running.size > 0;
    const last = live && now > this.maxEnd ? now : this.maxEnd;
    if (last === -Infinity) return null;
    let best = this.maxEnd === last ? this.first : null;
    let bestRank = best === null ? Infinity : this.firstRank;
    if (live && now === last) {
      for (const [id, rank] of this.running) if (rank < bestRank) { best = id; bestRank = rank; }
    }
    return best;
  }
}

function bump(counts, status, by) {
  const n = (counts.get(status) || 0) + by;
  if (n) counts.set(status, n); else counts.delete(status);
}

function isRunning(s) {
  for (const a of s.attempts) if (a.end === null) return true;
  return false;
}

export class FrameIndex {
  constructor() {
    this.state = null;
    this.tree = null;
    this.changed = null; // the step ids the last `update` followed (null: it indexed the state whole)
  }

  /**
   * Bring the index to `state` drawn with `tree`. The same state as last time, folded
   * forward since, is followed through its `log` (the steps its events named and the
   * steps they added); another is indexed whole: a pass over its steps, keeping nothing
   * per step (a map per step cost a rebuild several times a frame computed whole).
   * @param {import('./fold.js').RunState} state
   * @param {import('./layout.js').Tree} tree
   */
  update(state, tree) {
    if (state === this.state && tree === this.tree && state.log !== null && this.follow(state)) return;
    this.rebuild(state, tree);
  }

  rebuild(state, tree) {
    if (this.state !== null && this.state !== state) this.state.log = null; // not read any more: not kept
    this.state = state;
    this.tree = tree;
    this.counts = new Map(); // status -> steps
    this.all = new Group(); // every step, ranked by the tree (the tip's order, which the state's follows)
    // made when first asked for, then kept: the statuses under a step, the group of its children
    this.under = new Map(); // id -> Map status -> steps below it in the tree
    this.kids = new Map(); // parent id -> Group of its children
    this.exact = true; // false: a step is not in the tree; the reference is asked instead
    const { counts, all } = this, index = tree.index;
    for (const [id, s] of state.steps) {
      bump(counts, s.status, 1);
      const rank = index.get(id);
      if (rank === undefined) this.exact = false;
      if (!s.attempts.length) continue;
      let end = -Infinity, running = false;
      for (const a of s.attempts) {
        if (a.end === null) running = true;
        else if (a.end > end) end = a.end;
      }
      all.set(id, rank, end, running);
    }
    state.log = [];
    this.changed = null;
  }

  /** Index the steps the state's log names; false when the state changed in a way the
   * index does not follow (a step's end lowered, a step added that the tree lacks). */
  follow(state) {
    const log = state.log;
    state.log = [];
    const before = new Map(); // id -> [status, end] before the first event that named it
    for (let i = 0; i < log.length; i += 3) {
      if (!before.has(log[i])) before.set(log[i], [log[i + 1], log[i + 2]]);
    }
    for (const [id, [was, wasEnd]] of before) {
      const s = state.steps.get(id);
      if (!s) continue;
      const rank = this.tree.index.get(id);
      if (rank === undefined) return false;
      const end = lastEnd(s), status = s.status;
      if (end < wasEnd) return false;
      if (was !== status) {
        const chain = this.tree.ancestry.get(id);
        for (let i = 0; i < chain.length - 1; i++) {
          const m = this.under.get(chain[i]);
          if (!m) continue;
          if (was !== undefined) bump(m, was, -1);
          bump(m, status, 1);
        }
        if (was !== undefined) bump(this.counts, was, -1);
        bump(this.counts, status, 1);
      }
      if (s.attempts.length) {
        const running = isRunning(s);
        this.all.set(id, rank, end, running);
        const g = this.kids.get(this.tree.parent.get(id));
        if (g) g.set(id, rank, end, running);
      }
    }
    this.changed = [...before.keys()];
    return true;
  }

  /** Steps of each status in the state. */
  statusCounts() {
    return this.counts;
  }

  /** Steps of each status among the descendants of `id` in the tree. */
  countsUnder(id) {
    let m = this.under.get(id);
    if (!m) {
      m = new Map();
      const walk = (p) => {
        for (const c of this.tree.kids(p)) {
          const s = this.state.steps.get(c);
          if (s) bump(m, s.status, 1);
          walk(c);
        }
      };
      walk(id);
      this.under.set(id, m);
    }
    return m;
  }

  /** The group of the children of `id` in the tree. */
  childGroup(id) {
    let g = this.kids.get(id);
    if (!g) {
      g = new Group();
      for (const c of this.tree.kids(id)) {
        const s = this.state.steps.get(c);
        if (!s || !s.attempts.length) continue;
        let end = -Infinity, running = false;
        for (const a of s.attempts) {
          if (a.end === null) running = true;
          else if (a.end > end) end = a.end;
        }
        g.set(c, this.tree.index.get(c), end, running);
      }
      this.kids.set(id, g);
    }
    return g;
  }

  /** The critical path of the state (see critical.js), earliest step first. */
  criticalPath() {
    const state = this.state, tree = this.tree, now = state.ts;
    if (!this.exact) return criticalPath(state, tree);
    const get = (id) => state.steps.get(id);
    const top = this.all.latest(now);
    return walkPath(state, tree, top === null ? null : get(top), (id, seen) => {
      const best = this.childGroup(id).latest(now);
      if (best === null || !seen.has(best)) return best === null ? null : get(best);
      // the one that ended last is on the path already: the others, walked
      return latestOf(tree.kids(id).map(get).filter((k) => k && !seen.has(k.id)), now);
    });
  }
}
