// Run by test_browser_playback.py in Chromium: a graph kept from frame to frame (as
// playback draws it: forward an event at a time, then jumps back and ahead) against a
// graph drawn from scratch at each position. The two must be the same SVG, and a step or
// an edge that looks as it did in the frame before must be the very element it was (not
// built again). Nested graphs opened, then folded. loadRun: see run_setup.js.
(async (runId) => {
  const { layout } = await import('/static/js/layout.js');
  const { criticalPath } = await import('/static/js/critical.js');
  const { DagView } = await import('/static/js/dag.js');
  const { events, trace, tree, positions } = await loadRun(runId);
  const groups = tree.ids.filter((id) => tree.kids(id).length);
  const handlers = { onSelect: () => {}, onToggle: () => {} };
  const box = () => {
    const div = document.createElement('div');
    div.style.cssText = 'width: 1400px; height: 900px; overflow: auto; position: relative';
    document.body.append(div);
    return div;
  };
  const problems = [];
  let reused = 0, rebuilt = 0, frames = 0;
  const elements = (view) => new Map([
    ...[...view.root.querySelectorAll('g.step')].map((g) => [`step ${g.dataset.stepId}`, g]),
    ...[...view.root.querySelectorAll('path.edge')].map((p) => [`edge ${p.dataset.edge}`, p]),
  ]);
  for (const open of [true, false]) {
    const expanded = new Set(open ? groups : []);
    const shape = layout(tree, expanded);
    const kept = new DagView(box(), handlers);
    kept.setLayout(shape, tree, expanded);
    for (const at of positions) {
      const state = trace.at(at);
      const critical = criticalPath(state, tree);
      const selected = at % 7 === 3 ? tree.ids[at % tree.ids.length] : null;
      const before = new Map([...elements(kept)].map(([k, e]) => [k, [e, e.outerHTML]]));
      kept.update(state, critical, selected, null);
      const host = box();
      const fresh = new DagView(host, handlers);
      fresh.setLayout(shape, tree, expanded);
      fresh.update(state, critical, selected, null);
      frames++;
      if (kept.root.innerHTML !== fresh.root.innerHTML) {
        problems.push(`open=${open} at ${at}: the kept graph differs from one drawn anew`);
      }
      host.remove();
      for (const [k, e] of elements(kept)) {
        const was = before.get(k);
        if (!was) continue;
        const same = was[1] === e.outerHTML;
        if (same && was[0] !== e) problems.push(`open=${open} at ${at}: ${k} built again, unchanged`);
        if (same) reused++; else rebuilt++;
      }
      if (problems.length > 5) return { problems, frames, reused, rebuilt };
    }
  }
  return { problems, frames, reused, rebuilt, events: events.length, groups: groups.length };
})
