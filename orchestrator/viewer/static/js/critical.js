// The critical path of a run as it happened: the chain of steps each of which the
// next one waited for, ending with the step that finished last. Shortening any
// other step would not have ended the run sooner.

const EPS = 1e-3;

function finish(s, now) {
  if (!s || !s.attempts.length) return null;
  let end = null;
  for (const a of s.attempts) {
    const e = a.end === null ? now : a.end;
    if (e !== null && (end === null || e > end)) end = e;
  }
  return end;
}

function start(s) {
  return s.attempts.length ? s.attempts[0].start : null;
}

/** The step of `steps` that ends last at time `now`, the first of those that end then. */
export function latestOf(steps, now) {
  let best = null, bestEnd = -Infinity;
  for (const s of steps) {
    const e = finish(s, now);
    if (e !== null && e > bestEnd) { best = s; bestEnd = e; }
  }
  return best;
}

/**
 * @param {import('./fold.js').RunState} state  the run at some moment
 * @param {import('./layout.js').Tree} tree  parents and children of the steps
 * @returns {string[]} step ids, earliest first
 */
export function criticalPath(state, tree) {
  const now = state.ts;
  const get = (id) => state.steps.get(id);
  return walkPath(state, tree, latestOf(state.steps.values(), now),
    (id, seen) => latestOf(tree.kids(id).map(get).filter((k) => k && !seen.has(k.id)), now));
}

/**
 * The path back from `top` (the step that ended last).
 * @param {(id: string, seen: Set<string>) => object|null} latestKid  the child of step
 *   `id` not in `seen` that ends last (see `latestOf`)
 * @returns {string[]} step ids, earliest first
 */
export function walkPath(state, tree, top, latestKid) {
  const now = state.ts;
  const get = (id) => state.steps.get(id);
  const seen = new Set();
  const path = [];

  // What let `s` start: its latest dependency that ended before it started; a step
  // with none was started by its parent, so look at the parent's dependencies.
  function startGate(s) {
    for (let x = s; x; x = get(tree.parent.get(x.id) ?? null)) {
      const t0 = start(x) ?? finish(x, now);
      if (t0 === null) continue;
      const deps = (x.deps || []).map(get).filter((d) => d && !seen.has(d.id) && finish(d, now) !== null && finish(d, now) <= t0 + EPS);
      const gate = latestOf(deps, now);
      if (gate) return gate;
      if (!tree.parent.has(x.id)) break;
    }
    return null;
  }

  let cur = top;
  while (cur && !seen.has(cur.id)) {
    seen.add(cur.id);
    path.push(cur.id);
    // a step that holds others (a map, a plan) ends when the last of them ends
    const lastKid = latestKid(cur.id, seen);
    const curEnd = finish(cur, now);
    cur = lastKid && finish(lastKid, now) <= curEnd + EPS && finish(lastKid, now) >= (start(cur) ?? -Infinity) ? lastKid : startGate(cur);
  }
  return path.reverse();
}
