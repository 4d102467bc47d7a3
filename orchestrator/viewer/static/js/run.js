// The run page: summary, DAG, timeline and step details, replayable event by
// event, and following the run live while it is in progress.

import { API, ApiError, getJSON, runOrigin, runPath } from "./api.js";
import { DagView } from "./dag.js";
import { el, fill, fmtDuration, fmtTime, fmtTokens, STATUSES } from "./dom.js";
import { renderDetail } from "./detail.js";
import { RunState, runDuration, Trace, WINDOW_MAX } from "./fold.js";
import { FrameIndex } from "./frames.js";
import { GanttView } from "./gantt.js";
import { layout, Tree } from "./layout.js";

const OPEN_UP_TO = 40; // nested graphs with at most this many steps start expanded

const $ = (id) => document.getElementById(id);
const runId = decodeURIComponent(location.pathname.replace(/^\/runs\//, ""));

const page = {
  trace: null,
  detail: null,
  index: -1, // replay position: index of the last event shown
  following: true, // stay on the last event as events arrive
  playing: false,
  selected: null,
  expanded: new Set(),
  decided: new Set(), // groups whose expansion was set (by default or by the user)
  tree: null,
  structure: -1,
  source: null, // the EventSource of a live run
  lastArrival: 0, // local clock when the last live events came
  clock: null, // the timer that redraws the summary of a live run
  loading: false, // pages of events are still coming
  shown: null, // the state drawn last (kept on screen while a keyframe is read)
  seeking: null, // the position whose keyframe is being read, and the next one asked for
  seekNext: null,
  extending: false, // events after the window are being read for playback
  stepEvents: null, // {id, upTo, events}: the events of the step opened, when partial
  stepLoading: null, // the step whose events are being read
  failed: new Map(), // a read that failed ("seek:INDEX", ...) -> when (see mayAsk)
  clockOffset: null, // the viewer's clock less this one, once the summary came (see serverNow)
  resummarizing: false, // the summary of a live run is being read again (see resummarize)
  resummarizeAgain: false,
  watch: null, // the timer that asks whether an interrupted run was resumed
};

const frames = new FrameIndex(); // the counts and critical path of the state drawn
const dag = new DagView($("dag"), { onSelect: select, onToggle: toggle });
const gantt = new GanttView($("gantt-axis"), $("gantt"), { onSelect: select });

function tipSteps() {
  return [...page.trace.tip.steps.values()].map((s) => ({ id: s.id, parent: s.parent, deps: s.deps }));
}

function relayout() {
  const tip = page.trace.tip;
  page.tree = new Tree(tipSteps());
  for (const id of page.tree.ids) {
    if (page.decided.has(id) || !page.tree.kids(id).length) continue;
    page.decided.add(id);
    if (page.tree.size.get(id) <= OPEN_UP_TO) page.expanded.add(id);
  }
  page.structure = tip.structure;
  dag.setLayout(layout(page.tree, page.expanded), page.tree, page.expanded);
}

function toggle(id) {
  page.decided.add(id);
  if (page.expanded.has(id)) page.expanded.delete(id); else page.expanded.add(id);
  dag.setLayout(layout(page.tree, page.expanded), page.tree, page.expanded);
  render();
}

function setAll(open) {
  for (const id of page.tree.ids) {
    if (!page.tree.kids(id).length) continue;
    page.decided.add(id);
    if (open) page.expanded.add(id); else page.expanded.delete(id);
  }
  dag.setLayout(layout(page.tree, page.expanded), page.tree, page.expanded);
  render();
}

function select(id) {
  page.selected = id;
  dag.reveal(id);
  gantt.reveal(id);
  render();
}

function fact(label, value, attrs = {}) {
  return [el("dt", null, label), el("dd", attrs, value)];
}

function renderSummary() {
  const tip = page.trace.tip;
  const run = tip.run;
  const info = page.detail.run;
  $("run-workflow").textContent = run.workflow ?? info.workflow ?? "run";
  document.title = `${run.workflow ?? "run"} · ${runId} · Ponder`;
  $("crumb-run").textContent = runId;
  // stored as running, but its process is gone: not live, its duration does not grow
  const interrupted = page.detail.interrupted === true && !run.finished;
  const status = $("run-status");
  status.textContent = interrupted ? "interrupted" : run.status;
  status.className = interrupted ? "badge st-interrupted"
    : `badge st-${STATUSES.includes(run.status) ? run.status : "pending"}`;
  const stopped = $("run-interrupted");
  stopped.hidden = !interrupted;
  stopped.textContent = interrupted
    ? (page.detail.resume && page.detail.resume !== runId
      ? `interrupted \u2014 its process is gone; it is a sub-workflow's run of run ${page.detail.resume}: ponder resume ${page.detail.resume} continues both`
      : `interrupted \u2014 its process is gone; resume with ponder resume ${runId}`) : "";
  let [p, c] = tip.tokens();
  const [cp, cc] = page.trace.cutTokens(tip); // an interrupted run's cut plan calls
  p += cp;
  c += cc;
  const end = run.endTs ?? (page.source ? serverNow() : tip.ts);
  const duration = runDuration(run, end);
  const facts = [
    fact("Run", runId, { class: "mono", id: "fact-run-id" }),
    fact("Started", fmtTime(run.startTs)),
    fact("Duration", fmtDuration(duration) + (run.finished || interrupted ? "" : "\u2026"), { id: "fact-duration" }),
    fact("Tokens", `${fmtTokens(p, c)} (${p} + ${c})`, { id: "fact-tokens" }),
    fact("Steps", String(tip.steps.size), { id: "fact-steps" }),
    fact("Events", String(page.trace.count), { id: "fact-events" }),
  ];
  const origin = runOrigin(info);
  if (origin) {
    const label = { child: "Parent run", fork: "Fork of", replay: "Replay of" }[origin];
    const from = origin === "fork" ? ` from step ${info.parent_step_id}` : "";
    facts.push(fact(label, [el("a", { href: runPath(info.parent_run_id) }, info.parent_run_id), from], { id: "fact-parent" }));
  }
  const started = page.detail.children.filter((r) => runOrigin(r) === "child");
  if (started.length) {
    facts.push(fact("Child runs", String(started.length), { id: "fact-child-runs" }));
  }
  // a replay or a fork of this run is a run of it started by no step: the step details,
  // which list each step's child runs, never showed it (a fork names the step it
  // runs again from, yet no step of this run started it)
  const copies = page.detail.children.filter((r) => runOrigin(r) !== "child");
  if (copies.length) {
    facts.push(fact("Replays and forks", copies.map((r, i) => [i ? ", " : null, el("a", { href: runPath(r.id) }, r.id)]), { id: "fact-forks" }));
  }
  fill($("run-facts"), facts);
  const err = $("run-error");
  err.hidden = !run.error;
  err.textContent = run.error ? `error: ${run.error}` : "";
}

/** The trace's clock now: the viewer's (the summary says it, see summarized), else,
 * until the summary came, the last event's time plus what passed here since it came.
 * Not the last event's alone: a run whose step had run 90 s read 90 s short until its
 * next event came. */
function serverNow() {
  const since = page.trace.tip.ts + (page.lastArrival ? Date.now() / 1000 - page.lastArrival : 0);
  return page.clockOffset === null ? since : Math.max(since, Date.now() / 1000 + page.clockOffset);
}

function renderReplay(state) {
  const n = page.trace.count;
  const scrub = $("scrubber");
  scrub.max = String(Math.max(0, n - 1));
  scrub.value = String(Math.max(0, page.index));
  // the state after the event at the position names it (a state read from a keyframe
  // too, whose event the page does not hold); another is drawn while that one is read
  const e = state.index === page.index && page.index >= 0 ? state : null;
  const t0 = page.trace.tip.run.startTs ?? e?.ts ?? 0;
  $("replay-label").textContent = e
    ? `event ${page.index + 1}/${n} \u00b7 +${fmtDuration(e.ts - t0)} \u00b7 ${e.kind}${e.stepId ? " " + e.stepId : ""}`
    : n ? `event ${page.index + 1}/${n} \u00b7 loading\u2026` : "no events";
  $("btn-play").classList.toggle("playing", page.playing);
  $("btn-play").setAttribute("aria-pressed", String(page.playing));
  $("btn-play").setAttribute("aria-label", page.playing ? "Pause" : "Play");
  const counts = frames.statusCounts();
  fill($("counts"), STATUSES.filter((st) => counts.get(st)).map((st) => el("span", { class: `count st-${st}` }, `${counts.get(st)} ${st}`)));
}

let frame = false;
function render() {
  if (frame) return;
  frame = true;
  requestAnimationFrame(() => { frame = false; renderNow(); });
}

function renderNow() {
  const trace = page.trace;
  if (trace.tip.structure !== page.structure) relayout();
  let state = trace.at(page.index);
  if (state === null) { // beyond the events in hand: drawn as it was until they come
    seek(page.index);
    state = page.shown ?? trace.tip;
  } else {
    page.shown = state;
    if (trace.end - page.index < AHEAD / 2 && trace.end < trace.count) extend();
  }
  frames.update(state, page.tree); // from the steps changed since the last frame, when it can
  const critical = frames.criticalPath();
  dag.update(state, critical, page.selected, frames);
  gantt.setTip(trace.tip, page.tree, page.source ? trace.tip.ts : null);
  gantt.update(state, critical, page.selected, frames.changed);
  renderReplay(state);
  renderSummary();
  if (page.selected !== null) {
    renderDetail($("detail"), detailState(trace.withCut(state)), page.selected, { children: page.detail.children, onSelect: select, t0: trace.tip.run.startTs });
  }
}

// -- a long run: keyframes, the window of events, a step's own events ---------------
const AHEAD = 2000; // events read past a position moved to, for playback

const RETRY_MS = 5000;

/** Whether the read `key` may be asked for now: not when it failed less than RETRY_MS
 * ago. The page asks for what a redraw lacks, and a failed read redraws: without this,
 * a read the server refuses (the run deleted, the store down) was asked again at once,
 * for as long as the page stayed open. */
function mayAsk(key) {
  const at = page.failed.get(key);
  return at === undefined || Date.now() - at >= RETRY_MS;
}

/** Note whether the read `key` failed (see mayAsk). */
function asked(key, ok) {
  if (ok) page.failed.delete(key);
  else page.failed.set(key, Date.now());
}

/** Read the keyframe at or before `index` and the events after it up to AHEAD past
 * `index` (one request); one read at a time, the last position asked for next. */
async function seek(index) {
  if (page.seeking !== null) { page.seekNext = page.seeking === index ? null : index; return; }
  if (!mayAsk(`seek:${index}`)) return;
  page.seeking = index;
  try {
    const got = await getJSON(runApi(`/keyframe?index=${index}&events_to=${index + AHEAD}&preview=true`)); // one request
    page.trace.seek(got.keyframe, got.events);
    asked(`seek:${index}`, true);
  } catch (err) {
    asked(`seek:${index}`, false);
    loadingNote("events could not be loaded \u00b7 move again or reload", true, err.message);
  } finally {
    page.seeking = null;
  }
  const next = page.seekNext;
  page.seekNext = null;
  if (next !== null && next !== index) seek(next);
  render();
}

/** Read the events after the window's last, for playback. */
async function extend() {
  if (page.extending || page.seeking !== null) return;
  const trace = page.trace;
  const last = trace.windowSeq;
  if (!mayAsk(`extend:${last}`)) return;
  page.extending = true;
  try {
    const events = await getJSON(runApi("/events") + `?preview=true&limit=${AHEAD}` + (last !== null ? `&after_seq=${last}` : ""));
    if (page.trace === trace) trace.extend(events.events, last); // not when the window moved meanwhile
    asked(`extend:${last}`, true);
  } catch (err) {
    asked(`extend:${last}`, false);
    loadingNote("events could not be loaded \u00b7 move again or reload", true, err.message);
  } finally {
    page.extending = false;
  }
  render();
}

/** The state the detail panel shows: a step read from a keyframe lacks its input,
 * output and texts (one read as a preview has them cut), so its own events are read
 * (once per step, and again when it has events after those read) and folded up to the
 * replay position. */
function detailState(state) {
  const s = state.steps.get(page.selected);
  if (!s || !s.partial) return state;
  const cached = page.stepEvents;
  // a live run's other steps' events do not read it again (megabytes, at each event)
  if (!cached || cached.id !== s.id
      || ((state.seq ?? -1) > cached.upTo && page.trace.stepChangedAfter(s.id, cached.upTo))) {
    loadStep(s.id);
    return state;
  }
  const own = new RunState(page.trace.declared);
  for (const e of cached.events) if (state.seq !== null && e.seq <= state.seq) own.apply(e, -1);
  const full = own.steps.get(s.id);
  if (!full) return state;
  const merged = {
    ...s, input: full.input, output: full.output, raw: full.raw, meta: full.meta, error: full.error,
    errorType: full.errorType, latency: full.latency, attempts: full.attempts, decisions: full.decisions,
    planErrors: full.planErrors, partial: false,
  };
  return { steps: new Map([[s.id, merged]]) };
}

async function loadStep(id) {
  if (page.stepLoading === id || !mayAsk(`step:${id}`)) return;
  page.stepLoading = id;
  const upTo = page.trace.lastSeq ?? -1;
  try {
    const events = [];
    let after = null;
    for (;;) {
      const got = await getJSON(runApi("/events") + `?step_id=${encodeURIComponent(id)}` + (after !== null ? `&after_seq=${after}` : ""));
      events.push(...got.events);
      if (!got.has_more) break;
      after = got.last_seq;
    }
    page.stepEvents = { id, upTo, events };
    asked(`step:${id}`, true);
  } catch (err) {
    asked(`step:${id}`, false);
    loadingNote("the step's details could not be loaded \u00b7 reload", true, err.message);
  } finally {
    page.stepLoading = null;
  }
  if (page.selected === id) render();
}

function moveTo(index) {
  const n = page.trace.count;
  page.index = Math.max(0, Math.min(n - 1, index));
  page.following = page.index === n - 1;
  render();
}

// -- playback ---------------------------------------------------------------------
let lastTick = 0, carry = 0;
function tick(now) {
  if (!page.playing) return;
  const speed = Number($("speed").value) || 20;
  carry += ((now - lastTick) / 1000) * speed;
  lastTick = now;
  const steps = Math.floor(carry);
  carry -= steps;
  if (steps > 0) {
    moveTo(page.index + steps);
    if (page.index >= page.trace.count - 1) { pause(); return; }
  }
  requestAnimationFrame(tick);
}

function play() {
  if (page.index >= page.trace.count - 1) page.index = 0;
  page.playing = true;
  lastTick = performance.now();
  carry = 1; // show the first move at once
  requestAnimationFrame(tick);
  render();
}

function pause() {
  page.playing = false;
  render();
}

function bindControls() {
  $("btn-play").addEventListener("click", () => (page.playing ? pause() : play()));
  $("btn-back").addEventListener("click", () => { pause(); moveTo(page.index - 1); });
  $("btn-fwd").addEventListener("click", () => { pause(); moveTo(page.index + 1); });
  $("btn-first").addEventListener("click", () => { pause(); moveTo(0); });
  $("btn-last").addEventListener("click", () => { pause(); moveTo(page.trace.count - 1); });
  $("scrubber").addEventListener("input", (e) => { pause(); moveTo(Number(e.target.value)); });
  $("btn-expand").addEventListener("click", () => setAll(true));
  $("btn-collapse").addEventListener("click", () => setAll(false));
  $("btn-zoom-in").addEventListener("click", () => dag.zoom(1.25));
  $("btn-zoom-out").addEventListener("click", () => dag.zoom(0.8));
  $("btn-fit").addEventListener("click", () => dag.zoom("fit"));
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea") && e.target.id !== "scrubber") return;
    if (e.key === " " && !e.target.closest("button, [data-step-id]")) { e.preventDefault(); page.playing ? pause() : play(); }
    else if (e.key === "ArrowLeft" && e.target.id !== "scrubber") { pause(); moveTo(page.index - 1); }
    else if (e.key === "ArrowRight" && e.target.id !== "scrubber") { pause(); moveTo(page.index + 1); }
    else if (e.key === "Home" && e.target.id !== "scrubber") { pause(); moveTo(0); }
    else if (e.key === "End" && e.target.id !== "scrubber") { pause(); moveTo(page.trace.count - 1); }
  });
}

// -- live -------------------------------------------------------------------------
const RECONNECT_MS = 3000;

function liveNote(text, problem, detail = "") {
  const live = $("live");
  live.hidden = false;
  live.textContent = text;
  live.title = detail;
  live.classList.toggle("lost", problem);
}

function follow() {
  const after = page.trace.lastSeq;
  const url = runApi("/stream") + "?preview=true" + (after !== null ? `&after_seq=${after}` : "");
  const source = new EventSource(url);
  page.source = source;
  page.lastArrival = Date.now() / 1000;
  liveNote("live", false);
  source.addEventListener("events", (msg) => {
    const events = JSON.parse(msg.data);
    const added = page.trace.append(events);
    page.lastArrival = Date.now() / 1000;
    if (added && page.following && !page.playing) page.index = page.trace.count - 1;
    // a step that starts may start child runs (a sub-workflow, a spawn's children): the
    // summary, which lists them, was read when the page opened
    if (events.some((e) => e.kind === "step_started")) resummarize();
    render();
  });
  source.addEventListener("end", () => {
    source.close();
    page.source = null;
    $("live").hidden = true;
    resummarize();
    render();
  });
  // the run's process died while it was followed: it is interrupted, nothing more comes
  source.addEventListener("interrupted", () => {
    source.close();
    page.source = null;
    $("live").hidden = true;
    page.detail = { ...page.detail, interrupted: true };
    resummarize(); // for a sub-workflow's run, the run above it that resumes it
    render();
    watchResume();
  });
  // the server keeps asking a store that stopped answering, and says when it answers
  source.addEventListener("store_error", (msg) => {
    liveNote("live \u00b7 trace store unreachable", true, JSON.parse(msg.data).detail);
  });
  source.addEventListener("store_ok", () => liveNote("live", false));
  source.addEventListener("gone", (msg) => {
    source.close();
    page.source = null;
    liveNote("deleted from the trace store", true, JSON.parse(msg.data).detail);
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself unless the server refused it (the viewer or its
    // store down): then it is closed, and the page asks again a little later.
    if (source.readyState !== EventSource.CLOSED || page.source !== source) return;
    page.source = null;
    liveNote("disconnected \u00b7 retrying", true);
    refollow();
  });
  // the duration and running bars grow between events too
  clearInterval(page.clock);
  page.clock = setInterval(() => {
    if (!page.source) { clearInterval(page.clock); return; }
    renderSummary();
  }, 1000);
}

/** After the stream was refused: follow again in a while, unless the run is no longer
 * stored. EventSource does not say why it was refused, so the run's events are asked for
 * once: a run deleted while the stream was down (404, or its id now a start of another
 * run's) is said to be deleted, and not asked for again every few seconds for good. */
async function refollow() {
  let gone = null;
  try {
    const probe = await getJSON(runApi("/events?limit=1"));
    if (probe.run_id !== runId) gone = `no run ${runId} is stored`;
  } catch (err) {
    // 404: not stored; 409: not stored, its id a start of several runs' ids
    if (err instanceof ApiError && (err.status === 404 || err.status === 409)) gone = err.detail;
  }
  if (page.source !== null) return; // followed again meanwhile
  if (gone !== null) {
    liveNote("deleted from the trace store", true, gone);
    return;
  }
  setTimeout(() => { if (page.source === null && !page.trace.tip.run.finished) follow(); }, RECONNECT_MS);
}

const WATCH_MS = 5000;

/** While the run is interrupted, ask every WATCH_MS whether events came after its last
 * (`ponder resume` continues it under its id): then follow it again. The page said
 * "interrupted" for good, the run going on unseen until it was reloaded. */
function watchResume() {
  clearTimeout(page.watch);
  page.watch = setTimeout(async () => {
    if (page.source !== null || page.trace.tip.run.finished) return;
    if (document.visibilityState === "visible") {
      let more = null;
      try {
        const after = page.trace.lastSeq;
        more = await getJSON(runApi("/events") + `?preview=true&limit=1${after !== null ? `&after_seq=${after}` : ""}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return; // deleted: nothing comes
      }
      if (more !== null && more.run_id === runId && more.events.length) {
        page.detail = { ...page.detail, interrupted: false };
        follow();
        resummarize();
        render();
        return;
      }
    }
    watchResume();
  }, WATCH_MS);
}

// -- start --------------------------------------------------------------------------
function showMissing(message) {
  $("run-main").hidden = true;
  $("missing").hidden = false;
  $("missing-text").textContent = message;
}

/** The API path of this run, with `tail` ("/events", "/stream", a query) after it. The id
 * is one encoded segment: a run "a/events" is not the events of a run "a". */
function runApi(tail = "") {
  return `${API}/runs/${encodeURIComponent(runId)}${tail}`;
}

const EVENTS_PAGE = 5000; // the API's largest page of events

/** The run's page of events after `afterSeq` (from the first when null), a step's large
 * input, output and texts cut to previews (its own events, read when it is opened, are
 * whole). */
function eventsPage(afterSeq) {
  return getJSON(runApi("/events") + "?preview=true" + (afterSeq !== null ? `&after_seq=${afterSeq}` : ""));
}

function loadingNote(text, failed = false, detail = "") {
  const note = $("loading");
  note.hidden = text === null;
  note.textContent = text ?? "";
  note.title = detail;
  note.classList.toggle("failed", failed);
}

function loadingEvents() {
  const n = page.trace.count;
  const total = page.detail.run.n_events ?? 0;
  loadingNote(`loading events \u00b7 ${n}${total > n ? ` of ${total}` : ""}`);
}

/** Fetch the pages after the first (folded already), drawing each as it comes; returns
 * the last page. The next page is asked for as soon as a page comes, before it is folded.
 * A run of more than WINDOW_MAX events is not read whole: the page jumps to the
 * server's latest keyframe and the events after it (`toTip`). */
async function loadRest(first) {
  let events = first;
  let next = events.has_more ? eventsPage(events.last_seq) : null;
  while (next !== null) {
    page.loading = true;
    loadingEvents();
    if (tooLong()) return toTip();
    events = await next;
    if (tooLong()) return toTip();
    next = events.has_more ? eventsPage(events.last_seq) : null;
    const added = page.trace.append(events.events);
    if (added && page.following && !page.playing) page.index = page.trace.count - 1;
    render();
  }
  page.loading = false;
  loadingNote(null);
  return events;
}

/** Whether the run has more events than the page keeps (known from its summary, else
 * once reading the next page would pass WINDOW_MAX). */
function tooLong() {
  const n = page.detail.run.n_events;
  return typeof n === "number" ? n > WINDOW_MAX : page.trace.count + EVENTS_PAGE > WINDOW_MAX;
}

/** The run as it stands from the server's latest keyframe (the server reads the run
 * once for it) and the events after it; returns the last page of them. */
async function toTip() {
  const tip = await getJSON(runApi("/keyframe"));
  const after = [];
  let events = { has_more: true, last_seq: tip.keyframe.seq, finished: tip.finished };
  while (events.has_more) {
    events = await eventsPage(events.last_seq);
    after.push(...events.events);
  }
  const following = page.following;
  page.trace.jump(tip.keyframe, after);
  page.shown = null;
  if (following && !page.playing) page.index = page.trace.count - 1;
  page.loading = false;
  loadingNote(null);
  render();
  return { ...events, last_seq: page.trace.lastSeq };
}

/** The run's summary came: its workflow, child runs, whether it is interrupted, and
 * the dependencies of its declared steps (computed by the server). */
function summarized(detail) {
  page.detail = detail;
  // the viewer's clock less this one (another machine's may be off)
  if (typeof detail.now === "number") page.clockOffset = detail.now - Date.now() / 1000;
  page.trace.declare(detail.graph);
  // interrupted: the tokens of its plan steps' cut attempts, counted at its last event
  page.trace.setCut(detail.interrupted && !detail.finished ? detail.last_seq : null, detail.cut);
  if (page.loading) loadingEvents();
  render();
}

const RESUMMARIZE_MS = 2000; // a live run's summary is read again at most this often

/** Read the run's summary again (its child runs), at most every RESUMMARIZE_MS, once
 * the one asked for last came. */
function resummarize() {
  if (page.resummarizing) { page.resummarizeAgain = true; return; }
  page.resummarizing = true;
  page.resummarizeAgain = false;
  getJSON(runApi("?steps=false")).then(summarized, () => {}) // the next events ask again
    .finally(() => setTimeout(() => {
      page.resummarizing = false;
      if (page.resummarizeAgain) resummarize();
    }, RESUMMARIZE_MS));
}

function cannotLoad(err) {
  if (err instanceof ApiError && err.status === 404) showMissing(`The trace store holds no run ${runId}.`);
  else showMissing(`Cannot load run ${runId}: ${err.message}`);
}

async function start() {
  // The summary of a long run takes the server a while (it folds every event); the
  // graph is drawn from the first page of events without waiting for it.
  const summary = getJSON(runApi("?steps=false"));
  summary.catch(() => {}); // awaited below
  let events;
  try {
    events = await eventsPage(null);
  } catch (err) {
    cannotLoad(err);
    return;
  }
  performance.mark("ponder:loaded");
  page.detail = { run: {}, children: [], interrupted: false }; // until the summary comes
  page.trace = new Trace([]);
  page.trace.append(events.events);
  page.index = page.trace.count - 1;
  performance.mark("ponder:folded");
  bindControls();
  renderNow();
  performance.mark("ponder:drawn");
  const fit = dag.fitScale();
  if (fit >= 0.5 && fit < 1) dag.zoom("fit"); // a graph a little larger than the panel: show it whole
  requestAnimationFrame(() => requestAnimationFrame(() => {
    performance.mark("ponder:first-render");
    window.__ponderFirstRenderMs = performance.now();
  }));
  const told = summary.then(summarized);
  told.catch(() => {}); // awaited below, once every event is in
  // A long run's events come in pages (the API's limit), each drawn as it arrives.
  try {
    events = await loadRest(events);
  } catch (err) {
    loadingNote("not every event could be loaded \u00b7 reload", true, err.message);
    document.body.dataset.ready = "1";
    return;
  }
  try {
    await told;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) cannotLoad(err);
    else loadingNote("the run's summary could not be loaded \u00b7 reload", true, err.message);
    document.body.dataset.ready = "1";
    return;
  }
  requestAnimationFrame(() => requestAnimationFrame(() => {
    window.__ponderAllEventsMs = performance.now();
    document.body.dataset.ready = "1";
  }));
  if (!events.finished && !page.detail.interrupted) follow();
  else if (!events.finished) watchResume();
}

start();
