// Run by test_browser_playback.py in Chromium: the timeline kept from frame to frame (as
// playback draws it: forward an event at a time, its rows followed through a
// FrameIndex, then jumps back and ahead) against a timeline drawn from scratch at each
// position. The two must be the same SVG, and a row that looks as it did in the frame
// before must be the very element it was (not built again). loadRun: see run_setup.js.
(async (runId) => {
  const { FrameIndex } = await import('/static/js/frames.js');
  const { GanttView } = await import('/static/js/gantt.js');
  const { events, trace, tree, positions } = await loadRun(runId);
  const make = () => {
    const axis = document.createElement('div');
    const scroller = document.createElement('div');
    scroller.style.cssText = 'width: 1000px; height: 900px; overflow: auto';
    document.body.append(axis, scroller);
    return [new GanttView(axis, scroller, { onSelect: () => {} }), axis, scroller];
  };
  const [kept] = make();
  const frames = new FrameIndex();
  const problems = [];
  let reused = 0, rebuilt = 0, n = 0;
  for (const at of positions) {
    const state = trace.at(at);
    frames.update(state, tree);
    const critical = frames.criticalPath();
    const selected = at % 7 === 3 ? tree.ids[at % tree.ids.length] : null;
    const before = new Map([...kept.root.querySelectorAll('g.row')].map((g) => [g.dataset.row, [g, g.outerHTML]]));
    kept.setTip(trace.tip, tree, null);
    kept.update(state, critical, selected, frames.changed);
    const [fresh, axis, scroller] = make();
    fresh.setTip(trace.tip, tree, null);
    fresh.update(state, critical, selected, null);
    n++;
    if (kept.root.outerHTML !== fresh.root.outerHTML || kept.axis.outerHTML !== fresh.axis.outerHTML) {
      problems.push(`at ${at}: the kept timeline differs from one drawn anew`);
    }
    axis.remove();
    scroller.remove();
    for (const g of kept.root.querySelectorAll('g.row')) {
      const was = before.get(g.dataset.row);
      if (!was) continue;
      const same = was[1] === g.outerHTML;
      if (same && was[0] !== g) problems.push(`at ${at}: row ${g.dataset.row} built again, unchanged`);
      if (same) reused++; else rebuilt++;
    }
    if (problems.length > 5) break;
  }
  return { problems, frames: n, reused, rebuilt, events: events.length };
})
