// Run by test_page_logic.py in Chromium: the server's keyframe of a run, read back by
// the page, against the page's own fold of every event. Returns the fields that differ.
(async (runId) => {
  const { RunState, Trace } = await import('/static/js/fold.js');
  const api = `/api/v1/runs/${encodeURIComponent(runId)}`;
  const events = (await (await fetch(`${api}/events`)).json()).events;
  const kf = (await (await fetch(`${api}/keyframe`)).json()).keyframe;
  const graph = (await (await fetch(`${api}?steps=false`)).json()).graph; // declared steps' deps
  const trace = new Trace(graph);
  trace.append(events);
  const folded = trace.at(events.length - 1);
  const read = RunState.fromKeyframe(kf, trace.declared);
  const near = (a, b) => (a === null || b === null ? a === b : Math.abs(a - b) < 1e-5);
  const problems = [];
  const same = (where, a, b) => {
    const ok = typeof a === 'number' && typeof b === 'number' ? near(a, b) : JSON.stringify(a) === JSON.stringify(b);
    if (!ok) problems.push(`${where}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);
  };
  same('ids', [...folded.steps.keys()], [...read.steps.keys()]);
  for (const key of ['status', 'workflow', 'startTs', 'endTs', 'error', 'prompt', 'completion', 'duration', 'finished', 'execTs', 'lastTs', 'before']) {
    same(`run.${key}`, folded.run[key] ?? null, read.run[key] ?? null);
  }
  same('index', folded.index, read.index);
  same('seq', folded.seq, read.seq);
  for (const [id, f] of folded.steps) {
    const r = read.steps.get(id);
    if (!r) continue;
    for (const key of ['firstSeq', 'status', 'kind', 'declared', 'parent', 'deps', 'addedBy', 'addedSeq', 'reason',
      'replanned', 'scheduledAt', 'pool', 'latency', 'prompt', 'completion', 'cause']) {
      same(`${id}.${key}`, f[key], r[key]);
    }
    same(`${id}.attempts`, f.attempts.length, r.attempts.length);
    f.attempts.forEach((a, i) => ['n', 'start', 'end', 'outcome'].forEach((k) => same(`${id}.attempts[${i}].${k}`, a[k], r.attempts[i][k])));
    same(`${id}.decisions`, f.decisions.map((d) => [d.action, d.by]), r.decisions.map((d) => [d.action, d.by]));
    f.decisions.forEach((d, i) => same(`${id}.decisions[${i}].ts`, d.ts, r.decisions[i].ts));
    same(`${id}.planErrors`, f.planErrors.map((p) => [p.round, p.code, p.layer]), r.planErrors.map((p) => [p.round, p.code, p.layer]));
  }
  return { problems, steps: read.steps.size, partial: [...read.steps.values()].every((s) => s.partial) };
})
