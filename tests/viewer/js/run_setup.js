// Shared by dag_check.js and gantt_check.js, which test_browser_playback.py runs with
// this file ahead of them (the page's Content-Security-Policy lets it import only the
// viewer's own /static scripts): the stored run folded into a Trace, its Tree, and the
// positions playback is checked at (forward an event at a time, then jumps back and
// ahead).
const loadRun = async (runId) => {
  const { Trace } = await import('/static/js/fold.js');
  const { Tree } = await import('/static/js/layout.js');
  const api = `/api/v1/runs/${encodeURIComponent(runId)}`;
  const events = (await (await fetch(`${api}/events`)).json()).events;
  const head = await (await fetch(`${api}?steps=false`)).json();
  const trace = new Trace(head.graph);
  trace.append(events);
  const tree = new Tree([...trace.tip.steps.values()].map((s) => ({ id: s.id, parent: s.parent, deps: s.deps })));
  const positions = [...Array(events.length).keys()];
  positions.push(3, events.length - 1, 0, Math.floor(events.length / 2), 1, 2);
  return { events, trace, tree, positions };
};
