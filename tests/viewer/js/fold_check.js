// Run by test_page_logic.py in Chromium: folds a small trace; `reasons` are patch reasons.
(async (reasons) => {
  const { Trace, isReplan } = await import('/static/js/fold.js');
  const { Tree } = await import('/static/js/layout.js');
  const { criticalPath } = await import('/static/js/critical.js');
  const ev = (seq, ts, kind, fields = {}) => ({ run_id: 'r', seq, ts, kind, ...fields });
  const events = [
    ev(0, 0, 'run_started', { workflow: 'w', inputs: {}, spec: { steps: [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }] } }),
    ev(1, 0, 'step_started', { step_id: 'a', step_kind: 'tool', attempt: 1, input: {} }),
    ev(2, 0, 'step_started', { step_id: 'b', step_kind: 'tool', attempt: 1, input: {} }),
    ev(3, 1, 'step_succeeded', { step_id: 'a', attempt: 1, output: 1, usage: { prompt_tokens: 3, completion_tokens: 1 } }),
    ev(4, 2, 'step_retrying', { step_id: 'b', attempt: 1, error: 'HTTP 503', error_type: 'X', delay_s: 1 }),
    ev(5, 3, 'step_started', { step_id: 'b', step_kind: 'tool', attempt: 2, input: {} }),
    ev(6, 1, 'step_started', { step_id: 'c', step_kind: 'tool', attempt: 1, input: {} }),
    ev(7, 2, 'step_succeeded', { step_id: 'c', attempt: 1, output: 3 }),
    ev(8, 5, 'step_succeeded', { step_id: 'b', attempt: 2, output: 2 }),
    ev(9, 5, 'step_started', { step_id: 'd', step_kind: 'tool', attempt: 1, input: {} }),
    ev(10, 6, 'step_succeeded', { step_id: 'd', attempt: 1, output: 4 }),
    ev(11, 6, 'run_finished', { status: 'succeeded', usage: { prompt_tokens: 3, completion_tokens: 1 } }),
  ];
  const graph = [
    { id: 'a', declared: true, deps: [], kind: 'tool' }, { id: 'b', declared: true, deps: [], kind: 'tool' },
    { id: 'c', declared: true, deps: ['a'], kind: 'tool' }, { id: 'd', declared: true, deps: ['b', 'c'], kind: 'tool' },
  ];
  const trace = new Trace(graph);
  trace.append(events);
  trace.append(events.slice(5)); // a reconnecting stream resends: ignored
  const tree = new Tree([...trace.tip.steps.values()]);
  const end = trace.at(11);
  const b = end.steps.get('b');
  // a copy shares the steps until one of the two changes one
  const copy = end.clone();
  const shared = copy.steps.get('a') === end.steps.get('a') && copy.steps.get('d') === end.steps.get('d');
  copy.apply(ev(12, 7, 'step_started', { step_id: 'a', step_kind: 'tool', attempt: 2, input: { again: 1 } }), 12);
  end.apply(ev(12, 7, 'step_failed', { step_id: 'd', attempt: 1, error: 'x' }), 12);
  const apart = [end.steps.get('a').status, end.steps.get('a').attempts.length, copy.steps.get('a').status,
    copy.steps.get('a').attempts.length, copy.steps.get('a').input, copy.steps.get('d').status,
    copy.steps.get('d').attempts[0].outcome, end.steps.get('d').status, copy.steps.get('b') === end.steps.get('b')];
  const mid = trace.at(4);
  return {
    shared,
    apart,
    n: trace.events.length,
    attempts: b.attempts.map((x) => [x.n, x.start, x.end, x.outcome]),
    critical: criticalPath(end, tree),
    midStatus: Object.fromEntries([...mid.steps.values()].map((s) => [s.id, s.status])),
    midCritical: criticalPath(mid, tree),
    back: trace.at(2).steps.get('a').status,
    tokens: end.tokens(),
    replan: reasons.map((r) => isReplan(r)),
  };
})
