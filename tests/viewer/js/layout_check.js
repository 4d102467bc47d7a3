// Run by test_page_logic.py in Chromium: checks the DAG layout; returns [problems, n_steps].
(async () => {
  const { Tree, layout, layers } = await import('/static/js/layout.js');
  // a random run of a few hundred steps: nested graphs up to three deep, whose steps
  // may use what their parent could see (its inputs, transitively) and each other
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const steps = [];
  const sees = new Map(); // id -> every step it waits for, transitively
  function gen(parent, depth, allowed, count) {
    const made = [];
    for (let i = 0; i < count; i++) {
      const id = `${parent ?? 'n'}.${i}`;
      const pool = [...allowed, ...made];
      const deps = new Set();
      for (let k = 0; k < 3; k++) if (pool.length && rand() < 0.6) deps.add(pool[Math.floor(rand() * pool.length)]);
      const seen = new Set(deps);
      for (const d of deps) for (const x of sees.get(d)) seen.add(x);
      for (const x of allowed) seen.add(x); // inside a parent: after whatever it waited for
      sees.set(id, seen);
      steps.push({ id, deps: [...deps], parent });
      made.push(id);
      if (depth < 3 && rand() < 0.3) gen(id, depth + 1, [...seen], 2 + Math.floor(rand() * 6));
    }
  }
  gen(null, 0, [], 60);
  const tree = new Tree(steps);
  const problems = [];
  for (const expanded of [new Set(tree.ids), new Set()]) {
    const out = layout(tree, expanded);
    const drawn = [...out.boxes.keys()];
    for (const e of out.edges) {
      const a = out.boxes.get(e.from), b = out.boxes.get(e.to);
      if (!(a.x + a.w <= b.x)) problems.push(`edge ${e.from}->${e.to} does not point right`);
    }
    for (const id of tree.ids) {
      const v = tree.visible(id, expanded);
      if (!out.boxes.has(v)) problems.push(`${id} has no box (stands for ${v})`);
    }
    // siblings never overlap, and children lie inside their open parent
    for (const p of [null, ...drawn]) {
      const kids = tree.kids(p).filter((k) => out.boxes.has(k));
      for (let i = 0; i < kids.length; i++) {
        const a = out.boxes.get(kids[i]);
        if (p !== null) {
          const box = out.boxes.get(p);
          if (a.x < box.x || a.y < box.y || a.x + a.w > box.x + box.w + 0.01 || a.y + a.h > box.y + box.h + 0.01)
            problems.push(`${kids[i]} sticks out of ${p}`);
        }
        for (let j = i + 1; j < kids.length; j++) {
          const b = out.boxes.get(kids[j]);
          if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h)
            problems.push(`${kids[i]} overlaps ${kids[j]}`);
        }
      }
    }
    if (expanded.size === 0 && drawn.some((id) => tree.parent.get(id) !== null))
      problems.push('a collapsed graph drew a nested step');
  }
  // a cycle (a corrupt trace) is broken, not looped on
  const cyc = layers(['a', 'b', 'c'], new Map([['a', ['c']], ['b', ['a']], ['c', ['b']]]));
  if (cyc.size !== 3) problems.push('cycle not laid out');
  const loop = new Tree([{ id: 'p', parent: 'q', deps: [] }, { id: 'q', parent: 'p', deps: [] }]);
  if (layout(loop, new Set(['p', 'q'])).boxes.size !== 2) problems.push('parent cycle not cut');
  return [problems, steps.length];
})
