// Fold a run's events into the state of its steps at any point of the run.
//
// The viewer keeps two folds: the tip (every event read so far, which fixes the
// graph's structure and so its layout) and the cursor (the events up to the
// replay position, which give what each step was doing at that moment).
//
// A long run's events are not all kept: the page holds a window of at most
// WINDOW_MAX of them and the state before the window's first (the base: a keyframe
// the server kept while it read the run, see orchestrator/viewer/_replay.py, or the
// empty state before the first event); the cursor folds forward from the base.
//
// The states share their steps: a copy of a state (`clone`) copies only its map of
// steps, and a state copies a step before it first changes it (each step object
// belongs to the state whose `own` it holds, and only that state changes it), so the
// tip, the base and the cursor of a long run hold one object for each step that is
// the same in all three.

/** The most events the page keeps: a run of more is replayed from keyframes. */
export const WINDOW_MAX = 20000;

let hydrated = 0; // gives each state read from a keyframe its own structure number
let owners = 0; // gives each state (and each state again once copied) its own mark

const REPLAN = /replan/i;
const PLAN_ROUND = /\bplan\s+(\d+)\s*$/i;

/** Whether a graph_patched reason marks a replan (the same rule as the server's). */
export function isReplan(reason) {
  if (REPLAN.test(reason)) return true;
  const round = PLAN_ROUND.exec(reason);
  return round !== null && Number(round[1]) >= 2;
}

// The reason the plan executor records for a round whose plan named its answer
// (direct_answer: no joiner call, so no joiner output either).
const PLAN_ANSWER = /^the plan named \$\S+ as its answer$/;

/** Who decided a plan round: its plan_decision event's `by`, or for a trace written
 * before it was recorded, "plan" for a direct answer, else "joiner" (the same rule as
 * the server's _decided_by in _replay.py). */
export function decidedBy(e) {
  if (e.by === "plan" || e.by === "joiner") return e.by; // recorded in traces written since
  return e.action === "finish" && (e.raw === null || e.raw === undefined)
    && typeof e.reason === "string" && PLAN_ANSWER.test(e.reason) ? "plan" : "joiner";
}

/** Step `s`'s decisions, each `by` whom step metadata `meta` says decided it, where it does. */
function decisionsBy(s, meta) {
  const by = new Map();
  for (const d of Array.isArray(meta?.decisions) ? meta.decisions : []) {
    if (d && (d.by === "plan" || d.by === "joiner")) by.set(`${d.round}/${d.action}`, d.by);
  }
  return s.decisions.map((d) => ({ ...d, by: by.get(`${d.round}/${d.action}`) ?? d.by }));
}

// The layer an AGoT plan error is about, as its message names it, for a plan_error event
// written before its `layer` was recorded (AGoT has no rounds: its events say round 1).
// `ponder show` reads it so too; _replay.py's _error_layer is the same rule.
const PLAN_LAYER = /^(?:layer (\d+): |the proposal of layer (\d+) )/;

/** The layer plan error text `error` names (an AGoT layer's), else null. */
export function errorLayer(error) {
  const m = typeof error === "string" ? PLAN_LAYER.exec(error) : null;
  return m === null ? null : Number(m[1] ?? m[2]);
}

function newStep(id, own) {
  return {
    own, id, kind: null, deps: [], parent: null, declared: false, addedBy: null, addedSeq: null,
    reason: null, replanned: false, status: "pending", attempts: [], scheduledAt: null,
    input: null, output: undefined, raw: null, meta: null, error: null, errorType: null,
    latency: null, prompt: 0, completion: 0, cause: null, firstSeq: null, pool: null,
    decisions: [], planErrors: [], // a plan step's joiner verdicts and rejected plans
  };
}

/** The last end of step `s`'s ended attempts (-Infinity when none). */
export function lastEnd(s) {
  let end = -Infinity;
  for (const a of s.attempts) if (a.end !== null && a.end > end) end = a.end;
  return end;
}

/** A copy of step `s` for the state whose mark is `own`. */
function copyStep(s, own) {
  return { ...s, own, attempts: s.attempts.map((a) => ({ ...a })), decisions: [...s.decisions], planErrors: [...s.planErrors] };
}

/** Forget what the tip does not need of a step: its input, output and texts. */
function lighten(s) {
  s.input = null;
  s.output = undefined;
  s.raw = null;
  s.meta = null;
  for (const a of s.attempts) a.error = null;
  s.decisions = s.decisions.map(({ round, action, ts, by }) => ({ round, action, reason: null, answer: undefined, raw: null, ts, by }));
  s.planErrors = s.planErrors.map(({ round, code, ts, layer }) => ({ round, attempt: null, code, error: "", line: null, raw: null, willRetry: false, ts, layer }));
}

/** How long `run` (a state's run) ran up to time `end`: its earlier executions' time
 * and its latest's up to `end` (a finished run's own duration; null before it started). */
export function runDuration(run, end) {
  if (run.duration !== null && run.duration !== undefined) return run.duration;
  return run.execTs !== null && end !== null ? run.before + Math.max(0, end - run.execTs) : null;
}

/** The state of a run after some of its events. */
export class RunState {
  /** @param light keep no step's input, output or texts (the tip: graph and timeline only) */
  constructor(declared, light = false) {
    this.declared = declared; // Map id -> {kind, deps} from the API's graph
    this.light = light;
    this.steps = new Map();
    // startTs: its first start; execTs: the start of its latest execution (a resume
    // starts one), lastTs: its latest event's time, before: the seconds its earlier
    // executions ran (each from its run_started to the last event before the next),
    // which its duration counts with the latest's and not the downtime between them
    this.run = { status: "running", workflow: null, startTs: null, endTs: null, output: undefined, error: null, prompt: 0, completion: 0, inputs: null, duration: null, finished: false, execTs: null, lastTs: null, before: 0 };
    this.index = -1; // index of the last event applied
    this.seq = null; // its seq
    this.ts = null; // its time
    this.kind = null; // its kind, and the step it names (the replay label says them)
    this.stepId = null;
    this.structure = 0; // bumped whenever a step is added
    this.own = ++owners; // the mark of the steps this state may change in place
    this.lean = light; // no step holds an input, output or texts (the tip; a keyframe's)
    this.summed = null; // tokens() of the state as it was at an event
    this.cutIn = false; // its steps count an interrupted run's cut calls (the server's tip)
    // When a view set it to an array: for each event applied since, the step it names, and
    // for each step added, its id, each followed by that step's status before (undefined
    // for a step added) and the last end of its ended attempts before (see frames.js)
    this.log = null;
  }

  /** The state a server keyframe holds (see _replay.py for its layout). Its steps are
   * `partial`: their input, output and texts are read when a step is opened. */
  static fromKeyframe(kf, declared, light = false) {
    const st = new RunState(declared, light);
    const str = (i) => (i === null || i === undefined ? null : kf.strings[i]);
    const time = (x) => (x === null || x === undefined ? null : kf.t0 + x);
    st.index = kf.index;
    st.seq = kf.seq;
    st.ts = kf.ts;
    st.kind = kf.kind ?? null;
    st.stepId = kf.step_id ?? null;
    const { finished, ...run } = kf.run;
    Object.assign(st.run, run);
    st.run.finished = !!finished;
    const own = st.own, none = [];
    for (const a of kf.steps) { // one literal per step, in newStep's field order
      st.steps.set(a[0], {
        own, id: a[0], kind: str(a[3]), deps: a[6] ?? [], parent: str(a[5]), declared: !!a[4],
        addedBy: str(a[7]), addedSeq: a[8] ?? null, reason: str(a[9]), replanned: !!a[10], status: str(a[2]),
        attempts: a[13] ? a[13].map(([n, start, end, o]) => ({ n, start: time(start), end: time(end), outcome: str(o), error: null })) : [],
        scheduledAt: time(a[11]), input: null, output: undefined, raw: null, meta: null, error: null, errorType: null,
        latency: a[14] ?? null, prompt: a[15] ?? 0, completion: a[16] ?? 0, cause: a[17] ?? null, firstSeq: a[1], pool: str(a[12]),
        decisions: a[18] ? a[18].map(([round, action, ts, by]) => ({ round, action: str(action), reason: null, answer: undefined, raw: null, ts: time(ts), by: str(by) ?? "joiner" })) : none.slice(),
        planErrors: a[19] ? a[19].map(([round, code, ts, layer]) => ({ round, attempt: null, code: str(code), error: "", line: null, raw: null, willRetry: false, ts: time(ts), layer: layer ?? null })) : none.slice(),
        partial: true,
      });
    }
    st.structure = -1e9 * ++hydrated;
    st.lean = true;
    return st;
  }

  /** A copy that folding either one leaves the other as it was. The steps are shared
   * until either state changes one (then it copies that step first): the copy costs
   * a map of the steps, not the steps. */
  clone(light = this.light) {
    const st = new RunState(this.declared, light);
    Object.assign(st, { index: this.index, seq: this.seq, ts: this.ts, kind: this.kind, stepId: this.stepId, structure: this.structure, cutIn: this.cutIn, run: { ...this.run } });
    st.lean = light || this.lean;
    if (light && !this.lean) { // the tip from a state with inputs and outputs: lightened copies
      for (const [id, s] of this.steps) {
        const c = copyStep(s, st.own);
        lighten(c);
        st.steps.set(id, c);
      }
      return st;
    }
    st.steps = new Map(this.steps);
    this.own = ++owners; // its steps are shared now: this state copies them to change them too
    return st;
  }

  /** Step `id` as this state may change it (a copy of a shared one), or undefined. */
  mine(id) {
    const s = this.steps.get(id);
    if (!s || s.own === this.own) return s;
    const c = copyStep(s, this.own);
    this.steps.set(id, c);
    return c;
  }

  step(id, seq) {
    let s = this.mine(id);
    if (!s) {
      s = newStep(id, this.own);
      s.firstSeq = seq;
      const d = this.declared.get(id);
      if (d) { s.kind = d.kind; s.deps = d.deps; }
      this.steps.set(id, s);
      this.structure++;
      if (this.log !== null) this.log.push(id, undefined, -Infinity);
    }
    return s;
  }

  lastAttempt(s, ts) {
    let a = s.attempts[s.attempts.length - 1];
    if (!a || a.end !== null) {
      a = { n: s.attempts.length + 1, start: ts, end: null, outcome: "running", error: null };
      s.attempts.push(a);
    }
    return a;
  }

  apply(e, index) {
    if (!this.light) this.lean = false;
    this.index = index;
    this.seq = e.seq;
    this.ts = e.ts;
    this.kind = e.kind;
    this.stepId = typeof e.step_id === "string" ? e.step_id : null;
    if (this.log !== null && e.step_id !== undefined && e.step_id !== null) {
      const s = this.steps.get(e.step_id);
      this.log.push(e.step_id, s?.status, s ? lastEnd(s) : -Infinity);
    }
    this.fold(e);
    // an event read as a preview (its large texts cut, see _preview.py): the step's own
    // events are read whole when it is opened, as a keyframe's step's are
    if (e.truncated && typeof e.step_id === "string" && !this.steps.get(e.step_id)?.partial) {
      const s = this.mine(e.step_id);
      if (s) s.partial = true;
    }
    if (this.run.lastTs === null || e.ts > this.run.lastTs) this.run.lastTs = e.ts;
    if (this.light && typeof e.step_id === "string") {
      const s = this.steps.get(e.step_id); // one this event changed is this state's own
      if (s && s.own === this.own) lighten(s);
    }
  }

  fold(e) {
    switch (e.kind) {
      case "run_started": {
        const run = this.run;
        if (run.startTs === null) run.startTs = e.ts;
        if (run.execTs !== null) run.before += Math.max(0, run.lastTs - run.execTs);
        run.execTs = e.ts;
        // a run resumed after it finished (a cancelled run) runs again: not finished, its
        // duration growing, its tokens its steps' (as the server's fold)
        Object.assign(this.run, { status: "running", workflow: e.workflow, inputs: e.inputs, endTs: null, error: null, output: undefined, duration: null, prompt: 0, completion: 0, finished: false });
        const steps = Array.isArray(e.spec?.steps) ? e.spec.steps : [];
        for (const raw of steps) {
          if (raw && typeof raw.id === "string") {
            const s = this.step(raw.id, e.seq);
            s.declared = true;
            if (!s.kind && typeof raw.kind === "string") s.kind = raw.kind;
          }
        }
        break;
      }
      case "graph_patched": {
        for (const p of Array.isArray(e.steps) ? e.steps : []) {
          if (!p || typeof p.id !== "string") continue;
          const s = this.step(p.id, e.seq);
          if (typeof p.kind === "string") s.kind = p.kind;
          if (Array.isArray(p.deps)) s.deps = p.deps.filter((d) => typeof d === "string");
          if (typeof p.parent === "string") s.parent = p.parent;
          s.addedBy = e.source_step;
          s.addedSeq = e.seq;
          s.reason = String(e.reason ?? "");
          s.replanned = isReplan(s.reason);
          this.structure++;
        }
        break;
      }
      case "step_scheduled": {
        const s = this.step(e.step_id, e.seq);
        s.status = "scheduled";
        s.kind = e.step_kind || s.kind;
        s.pool = e.pool;
        if (s.scheduledAt === null) s.scheduledAt = e.ts;
        break;
      }
      case "step_started": {
        const s = this.step(e.step_id, e.seq);
        s.status = "running";
        s.kind = e.step_kind || s.kind;
        s.input = e.input;
        s.attempts.push({ n: e.attempt, start: e.ts, end: null, outcome: "running", error: null });
        break;
      }
      case "step_retrying": {
        const s = this.step(e.step_id, e.seq);
        const a = this.lastAttempt(s, e.ts);
        Object.assign(a, { end: e.ts, outcome: "retrying", error: e.error });
        Object.assign(s, { status: "retrying", error: e.error, errorType: e.error_type });
        s.prompt += e.usage?.prompt_tokens || 0; // what the failed attempt spent
        s.completion += e.usage?.completion_tokens || 0;
        break;
      }
      case "step_succeeded": {
        const s = this.step(e.step_id, e.seq);
        const a = this.lastAttempt(s, e.ts);
        Object.assign(a, { end: e.ts, outcome: "succeeded" });
        Object.assign(s, { status: "succeeded", output: e.output, raw: e.raw ?? null, meta: e.meta ?? null, latency: e.latency_s ?? null, error: null, errorType: null });
        if (s.decisions.length) s.decisions = decisionsBy(s, e.meta);
        s.prompt += e.usage?.prompt_tokens || 0;
        s.completion += e.usage?.completion_tokens || 0;
        break;
      }
      case "step_failed": {
        const s = this.step(e.step_id, e.seq);
        const a = this.lastAttempt(s, e.ts);
        Object.assign(a, { end: e.ts, outcome: "failed", error: e.error });
        Object.assign(s, { status: "failed", error: e.error, errorType: e.error_type, raw: e.raw ?? s.raw });
        s.prompt += e.usage?.prompt_tokens || 0;
        s.completion += e.usage?.completion_tokens || 0;
        break;
      }
      case "step_skipped": {
        const s = this.step(e.step_id, e.seq);
        Object.assign(s, { status: "skipped", error: e.reason, cause: e.cause_step ?? null });
        break;
      }
      case "step_cancelled": {
        const s = this.step(e.step_id, e.seq);
        const a = s.attempts[s.attempts.length - 1];
        if (a && a.end === null) Object.assign(a, { end: e.ts, outcome: "cancelled", error: e.reason });
        Object.assign(s, { status: "cancelled", error: e.reason });
        s.prompt += e.usage?.prompt_tokens || 0;
        s.completion += e.usage?.completion_tokens || 0;
        break;
      }
      case "run_finished": {
        Object.assign(this.run, { status: e.status, endTs: e.ts, output: e.output, error: e.error ?? null, duration: e.duration_s ?? null });
        this.run.prompt = e.usage?.prompt_tokens || 0;
        this.run.completion = e.usage?.completion_tokens || 0;
        this.run.finished = true;
        break;
      }
      case "plan_decision": {
        const s = this.step(e.step_id, e.seq);
        s.decisions.push({ round: e.round, action: e.action, reason: e.reason ?? null, answer: e.answer, raw: e.raw ?? null, ts: e.ts, by: decidedBy(e) });
        break;
      }
      case "plan_error": {
        const s = this.step(e.step_id, e.seq);
        s.planErrors.push({ round: e.round, attempt: e.attempt, by: e.by ?? null, code: e.code, error: e.error, line: e.line ?? null, raw: e.raw ?? null, willRetry: !!e.will_retry, ts: e.ts, layer: Number.isInteger(e.layer) ? e.layer : errorLayer(e.error) });
        break;
      }
      default:
        break; // a kind this viewer does not know
    }
  }

  /** Token totals: the run's own once finished, else the sum over steps. */
  tokens() {
    if (this.run.finished) return [this.run.prompt, this.run.completion];
    const summed = this.summed; // the summary asks each frame: summed once per event
    if (summed && summed.index === this.index && summed.seq === this.seq && summed.n === this.steps.size) return summed.value;
    let p = 0, c = 0;
    for (const s of this.steps.values()) { p += s.prompt; c += s.completion; }
    this.summed = { index: this.index, seq: this.seq, n: this.steps.size, value: [p, c] };
    return [p, c];
  }
}

/** A run's events (a window of them, on a long run), and folds of them that move
 * forward cheaply. Positions are event indexes in the run (0-based, in seq order). */
export class Trace {
  constructor(graph) {
    this.declared = new Map();
    for (const g of graph || []) if (g.declared) this.declared.set(g.id, { kind: g.kind, deps: g.deps });
    this.base = new RunState(this.declared); // the state before events[0]
    this.events = []; // the window
    this.count = 0; // events of the run known so far
    this.tip = new RunState(this.declared, true);
    this.cursor = new RunState(this.declared);
    this.cut = null; // {seq, steps: {id: [prompt, completion]}}: see setCut
    this.stepSeqs = new Map(); // step id -> the seq of its last event appended
  }

  /** An interrupted run's cut plan attempts' tokens (the server's summary: its `cut` at
   * its `last_seq`), which `ponder show` counts on those steps and in the total while
   * the run is not resumed: the page's fold of the events does not, so they are added
   * to the state at that event (withCut, cutTokens), not to the states before it. */
  setCut(seq, steps) {
    this.cut = seq !== null && steps && Object.keys(steps).length ? { seq, steps } : null;
  }

  /** The cut calls' tokens the state lacks: [prompt, completion] (0, 0 but at the
   * run's last event, and for a state read from the server's tip, which has them). */
  cutTokens(state) {
    const cut = this.cut;
    if (!cut || state.cutIn || state.run.finished || state.seq !== cut.seq) return [0, 0];
    let p = 0, c = 0;
    for (const id of Object.keys(cut.steps)) if (state.steps.has(id)) { p += cut.steps[id][0]; c += cut.steps[id][1]; }
    return [p, c];
  }

  /** The state with the cut calls' tokens on their steps (a copy; see cutTokens). */
  withCut(state) {
    const [p, c] = this.cutTokens(state);
    if (!p && !c) return state;
    const st = state.clone();
    st.cutIn = true;
    for (const [id, [dp, dc]] of Object.entries(this.cut.steps)) {
      const s = st.mine(id);
      if (!s) continue;
      s.prompt += dp;
      s.completion += dc;
    }
    return st;
  }

  /** Add the declared steps of the run's graph (the API's, which computes their
   * dependencies), when it comes after some events were folded; returns whether any
   * step already folded changed. */
  declare(graph) {
    let changed = false;
    for (const g of graph || []) {
      if (!g.declared || this.declared.has(g.id)) continue;
      this.declared.set(g.id, { kind: g.kind, deps: g.deps });
      for (const state of [this.tip, this.cursor, this.base]) {
        const found = state.steps.get(g.id);
        if (!found || found.addedSeq !== null) continue; // a patch's deps win, as when folded
        const s = state.mine(g.id);
        s.kind ||= g.kind;
        s.deps = g.deps;
        state.structure++;
        changed = true;
      }
    }
    return changed;
  }

  /** Whether step `id` has events after seq `seq` among those appended. */
  stepChangedAfter(id, seq) {
    return (this.stepSeqs.get(id) ?? -Infinity) > seq;
  }

  /** The seq of the last event known (the tip's). */
  get lastSeq() {
    return this.tip.seq;
  }

  /** Index of the window's first event. */
  get start() {
    return this.base.index + 1;
  }

  /** Index after the window's last event. */
  get end() {
    return this.start + this.events.length;
  }

  /** The event at `index`, when the window holds it. */
  event(index) {
    return index >= this.start && index < this.end ? this.events[index - this.start] : null;
  }

  /** Add events read after the last one known; returns how many were new. The window
   * keeps them while it reaches the tip, dropping its oldest beyond WINDOW_MAX. */
  append(events) {
    let added = 0;
    for (const e of events) {
      if (this.lastSeq !== null && e.seq <= this.lastSeq) continue; // resent after a reconnect
      this.tip.apply(e, this.count);
      if (typeof e.step_id === "string") this.stepSeqs.set(e.step_id, e.seq);
      if (this.end === this.count && this.keep()) this.events.push(e);
      this.count++;
      added++;
    }
    return added;
  }

  /** The seq of the window's last event (of the base's when it holds none). */
  get windowSeq() {
    return this.events.length ? this.events[this.events.length - 1].seq : this.base.seq;
  }

  /** Add events after the window's last (read for playback), when they were read after
   * it: `after` is the seq they were read after. Read for another window (the scrubber
   * moved while they were read), they are left out, and false is returned: added after
   * this window's last event, they were replayed as if they followed it. */
  extend(events, after = this.windowSeq) {
    const last = this.windowSeq;
    if (after !== last) return false;
    for (const e of events) {
      if (last !== null && e.seq <= last) continue;
      if (!this.keep()) break;
      this.events.push(e);
    }
    return true;
  }

  /** Whether the window may take one more event: when full, its older half is
   * dropped if the replay position is past it (the base moves up), else not. */
  keep() {
    if (this.events.length < WINDOW_MAX) return true;
    const front = this.end - WINDOW_MAX / 2; // the new first event
    if (this.cursor.index < front - 1) return false;
    let base; // the state after event front - 1, the cursor left where it is
    if (this.cursor.index === front - 1) base = this.cursor.clone();
    else {
      base = this.base.clone();
      for (let i = this.start; i < front; i++) base.apply(this.events[i - this.start], i);
    }
    this.events = this.events.slice(front - this.start);
    this.base = base;
    return true;
  }

  /** Replay from a server keyframe and the events after it. */
  seek(keyframe, events) {
    this.base = RunState.fromKeyframe(keyframe, this.declared);
    this.events = [];
    this.cursor = this.base.clone();
    this.extend(events);
  }

  /** The run as it stands, from the server's latest keyframe and the events after it
   * (a long run: its events are not all read). */
  jump(keyframe, events) {
    this.seek(keyframe, []);
    this.base.cutIn = this.cursor.cutIn = true; // the server's tip counts the cut calls already
    this.tip = this.base.clone(true);
    this.tip.structure = this.base.structure;
    this.count = this.start;
    this.append(events);
  }

  /** The state after event `index`, folded forward from the last call when it can;
   * null when the window does not reach it (read it with `seek`). */
  at(index) {
    index = Math.max(-1, Math.min(index, this.count - 1));
    if (index < this.base.index || index >= this.end) return null;
    if (index < this.cursor.index || this.cursor.index < this.base.index) this.cursor = this.base.clone();
    for (let i = this.cursor.index + 1; i <= index; i++) this.cursor.apply(this.events[i - this.start], i);
    return this.cursor;
  }
}
