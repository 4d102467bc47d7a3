// Run by test_frames.py in Chromium: the FrameIndex's counts and critical path, kept
// from frame to frame, against the same computed from scratch, at random positions of
// random runs (nested plans, replans, retries, cancellations, ties and times out of
// order). Returns the differences found and how many frames were compared.
(async ([seed, nSteps, nFrames]) => {
  const { Trace } = await import('/static/js/fold.js');
  const { Tree } = await import('/static/js/layout.js');
  const { criticalPath } = await import('/static/js/critical.js');
  const { FrameIndex } = await import('/static/js/frames.js');
  let x = seed >>> 0;
  const rnd = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const events = [];
  let seq = 0, t = 100;
  const ev = (kind, fields) => {
    // whole seconds, often equal (ties), now and then back in time (out of order)
    t += rnd() < 0.1 ? -2 : Math.floor(rnd() * 2);
    events.push({ run_id: 'r', seq: seq++, ts: t, kind, ...fields });
  };
  ev('run_started', { workflow: 'w', inputs: {}, spec: { steps: [{ id: 'top' }, { id: 'plan' }] } });
  const ids = ['top', 'plan'];
  const open = new Map(); // id -> its attempt running
  const tries = new Map(); // id -> attempts started
  while (ids.length < nSteps || open.size) {
    const r = rnd();
    if (r < 0.15 && ids.length < nSteps) { // a plan (or a replan) adds steps under some step
      const parent = pick(ids);
      const added = [];
      for (let k = 0, n = 1 + Math.floor(rnd() * 4); k < n; k++) added.push(`${parent}.${ids.length + k}`);
      ev('graph_patched', { source_step: parent, reason: rnd() < 0.3 ? 'llmcompiler plan 2' : 'llmcompiler plan 1',
        steps: added.map((id) => ({ id, kind: 'llm', parent, deps: rnd() < 0.7 ? [pick(ids)] : [] })) });
      ids.push(...added);
    } else if (r < 0.5) { // a step starts (scheduled first, or not)
      const id = pick(ids);
      if (open.has(id)) continue;
      if (rnd() < 0.5) ev('step_scheduled', { step_id: id, step_kind: 'llm', pool: 'p', priority: 1 });
      const n = (tries.get(id) ?? 0) + 1;
      tries.set(id, n);
      open.set(id, n);
      ev('step_started', { step_id: id, step_kind: 'llm', attempt: n, input: {} });
    } else if (open.size) { // one running ends
      const id = pick([...open.keys()]);
      const n = open.get(id);
      open.delete(id);
      const how = rnd();
      if (how < 0.03) continue; // left running (an interrupted run)
      if (how < 0.15) ev('step_retrying', { step_id: id, attempt: n, error: 'e', delay_s: 0 });
      else if (how < 0.25) ev('step_cancelled', { step_id: id, reason: 'superseded' });
      else if (how < 0.3) ev('step_failed', { step_id: id, attempt: n, error: 'x' });
      else if (how < 0.33) ev('step_skipped', { step_id: id, reason: 'branch', cause_step: 'top' });
      else ev('step_succeeded', { step_id: id, attempt: n, output: 1 });
    }
  }
  ev('run_finished', { status: 'succeeded' });

  const trace = new Trace([]);
  trace.append(events);
  const tree = new Tree([...trace.tip.steps.values()].map((s) => ({ id: s.id, parent: s.parent, deps: s.deps })));
  const frames = new FrameIndex();
  const problems = [];
  const countsOf = (steps) => {
    const m = new Map();
    for (const s of steps) m.set(s.status, (m.get(s.status) || 0) + 1);
    return JSON.stringify([...m].sort());
  };
  const under = (state, id) => {
    const out = [];
    const walk = (p) => { for (const c of tree.kids(p)) { const s = state.steps.get(c); if (s) out.push(s); walk(c); } };
    walk(id);
    return out;
  };
  let at = -1, followed = 0;
  for (let f = 0; f < nFrames; f++) {
    // mostly forward a few events (playback), now and then a jump back or far ahead
    const r = rnd();
    at = r < 0.1 ? Math.floor(rnd() * events.length) : Math.min(events.length - 1, at + 1 + Math.floor(rnd() * 4));
    const state = trace.at(at);
    frames.update(state, tree);
    if (frames.changed !== null) followed++;
    const want = criticalPath(state, tree);
    const got = frames.criticalPath();
    if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`critical at ${at}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
    const counts = JSON.stringify([...frames.statusCounts()].sort());
    if (counts !== countsOf(state.steps.values())) problems.push(`counts at ${at}: ${counts} != ${countsOf(state.steps.values())}`);
    for (const id of tree.ids) {
      if (!tree.kids(id).length) continue;
      const c = JSON.stringify([...frames.countsUnder(id)].sort());
      if (c !== countsOf(under(state, id))) problems.push(`under ${id} at ${at}: ${c} != ${countsOf(under(state, id))}`);
    }
    if (problems.length > 5) break;
    if (at === events.length - 1) at = -1;
  }
  return { problems, frames: nFrames, followed, events: events.length, steps: trace.tip.steps.size };
})
