// Fold a run's events into the state of its steps at any point of the run.
//
// The viewer keeps two folds: the tip (every event read so far, which fixes the
// graph's structure and so its layout) and the cursor (the events up to the
// replay position, which give what each step was doing at that moment).

const REPLAN = /replan/i;
const PLAN_ROUND = /\bplan\s+(\d+)\s*$/i;

/** Whether a graph_patched reason marks a replan (the same rule as the server's). */
export function isReplan(reason) {
  if (REPLAN.test(reason)) return true;
  const round = PLAN_ROUND.exec(reason);
  return round !== null && Number(round[1]) >= 2;
}

function newStep(id) {
  return {
    id, kind: null, deps: [], parent: null, declared: false, addedBy: null, addedSeq: null,
    reason: null, replanned: false, status: "pending", attempts: [], scheduledAt: null,
    input: null, output: undefined, raw: null, meta: null, error: null, errorType: null,
    latency: null, prompt: 0, completion: 0, cause: null, firstSeq: null, pool: null,
    decisions: [], planErrors: [], // a plan step's joiner verdicts and rejected plans
  };
}

/** The state of a run after some of its events. */
export class RunState {
  constructor(declared) {
    this.declared = declared; // Map id -> {kind, deps} from the API's graph
    this.steps = new Map();
    this.run = { status: "running", workflow: null, startTs: null, endTs: null, output: undefined, error: null, prompt: 0, completion: 0, inputs: null, duration: null };
    this.index = -1; // index of the last event applied
    this.ts = null; // its time
    this.structure = 0; // bumped whenever a step is added
  }

  step(id, seq) {
    let s = this.steps.get(id);
    if (!s) {
      s = newStep(id);
      s.firstSeq = seq;
      const d = this.declared.get(id);
      if (d) { s.kind = d.kind; s.deps = d.deps; }
      this.steps.set(id, s);
      this.structure++;
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
    this.index = index;
    this.ts = e.ts;
    switch (e.kind) {
      case "run_started": {
        if (this.run.startTs === null) this.run.startTs = e.ts;
        Object.assign(this.run, { status: "running", workflow: e.workflow, inputs: e.inputs, endTs: null, error: null });
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
        break;
      }
      case "step_succeeded": {
        const s = this.step(e.step_id, e.seq);
        const a = this.lastAttempt(s, e.ts);
        Object.assign(a, { end: e.ts, outcome: "succeeded" });
        Object.assign(s, { status: "succeeded", output: e.output, raw: e.raw ?? null, meta: e.meta ?? null, latency: e.latency_s ?? null, error: null, errorType: null });
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
        s.decisions.push({ round: e.round, action: e.action, reason: e.reason ?? null, answer: e.answer, raw: e.raw ?? null, ts: e.ts });
        break;
      }
      case "plan_error": {
        const s = this.step(e.step_id, e.seq);
        s.planErrors.push({ round: e.round, attempt: e.attempt, code: e.code, error: e.error, line: e.line ?? null, raw: e.raw ?? null, willRetry: !!e.will_retry, ts: e.ts });
        break;
      }
      default:
        break; // a kind this viewer does not know
    }
  }

  /** Token totals: the run's own once finished, else the sum over steps. */
  tokens() {
    if (this.run.finished) return [this.run.prompt, this.run.completion];
    let p = 0, c = 0;
    for (const s of this.steps.values()) { p += s.prompt; c += s.completion; }
    return [p, c];
  }
}

/** A run's events, and folds of them that move forward cheaply. */
export class Trace {
  constructor(graph) {
    this.declared = new Map();
    for (const g of graph || []) if (g.declared) this.declared.set(g.id, { kind: g.kind, deps: g.deps });
    this.events = [];
    this.tip = new RunState(this.declared);
    this.cursor = new RunState(this.declared);
  }

  /** Add the declared steps of the run's graph (the API's, which computes their
   * dependencies), when it comes after some events were folded; returns whether any
   * step already folded changed. */
  declare(graph) {
    let changed = false;
    for (const g of graph || []) {
      if (!g.declared || this.declared.has(g.id)) continue;
      this.declared.set(g.id, { kind: g.kind, deps: g.deps });
      for (const state of [this.tip, this.cursor]) {
        const s = state.steps.get(g.id);
        if (!s || s.addedSeq !== null) continue; // a patch's deps win, as when folded
        s.kind ||= g.kind;
        s.deps = g.deps;
        state.structure++;
        changed = true;
      }
    }
    return changed;
  }

  get lastSeq() {
    return this.events.length ? this.events[this.events.length - 1].seq : null;
  }

  /** Add events read after the last one; returns how many were new. */
  append(events) {
    let added = 0;
    for (const e of events) {
      if (this.lastSeq !== null && e.seq <= this.lastSeq) continue; // resent after a reconnect
      this.events.push(e);
      this.tip.apply(e, this.events.length - 1);
      added++;
    }
    return added;
  }

  /** The state after events[0..index]; folds forward from the last call when it can. */
  at(index) {
    index = Math.max(-1, Math.min(index, this.events.length - 1));
    if (index < this.cursor.index) this.cursor = new RunState(this.declared);
    for (let i = this.cursor.index + 1; i <= index; i++) this.cursor.apply(this.events[i], i);
    return this.cursor;
  }
}
