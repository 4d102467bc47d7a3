// The runs page: a filtered, paged table of runs, newest first.

import { API, ApiError, getJSON, runOrigin, runPath } from "./api.js";
import { el, fill, fmtDuration, fmtTime, fmtTokens, statusBadge } from "./dom.js";
import { runDuration } from "./fold.js";

const PAGE = 50;
const REFRESH_MS = 4000;

const form = document.getElementById("filters");
const statusSel = document.getElementById("filter-status");
const workflowIn = document.getElementById("filter-workflow");
const topIn = document.getElementById("filter-top");
const tbody = document.querySelector("#runs tbody");
const newer = document.getElementById("newer");
const older = document.getElementById("older");
const pageLabel = document.getElementById("page-label");
const note = document.getElementById("runs-status");
const names = document.getElementById("workflow-names");
const knownWorkflows = new Set();

let offset = 0;
let timer = null;
let loading = 0;

function readUrl() {
  const q = new URLSearchParams(location.search);
  statusSel.value = q.get("status") || "";
  workflowIn.value = q.get("workflow") || "";
  topIn.checked = q.get("top_level") === "1";
  offset = Math.max(0, parseInt(q.get("offset") || "0", 10) || 0);
}

function writeUrl() {
  const q = new URLSearchParams();
  if (statusSel.value) q.set("status", statusSel.value);
  if (workflowIn.value.trim()) q.set("workflow", workflowIn.value.trim());
  if (topIn.checked) q.set("top_level", "1");
  if (offset) q.set("offset", String(offset));
  const s = q.toString();
  history.replaceState(null, "", s ? `?${s}` : location.pathname);
}

function row(run, interrupted, resumeId, execution, now) {
  const link = el("a", { href: runPath(run.id), class: "run-link" }, run.workflow);
  const wf = el("td", { class: "wf" }, link);
  const origin = runOrigin(run);
  if (origin) {
    const parent = el("a", { href: runPath(run.parent_run_id) }, run.parent_run_id);
    const step = run.parent_step_id;
    wf.append(el("div", { class: "muted small run-origin" }, ...(
      origin === "child" ? ["\u21b3 child of ", parent, step ? ` \u00b7 step ${step}` : ""]
        : origin === "fork" ? ["\u21b3 fork of ", parent, ` from step ${step}`]
          : ["\u21b3 replay of ", parent])));
  }
  // interrupted: stored as running, but its process is gone; it neither runs nor ticks
  const running = run.status === "running" && !interrupted;
  // a resumed run's: its executions' time, not the downtime between them (as its page);
  // an interrupted run's stops at its last event (ended_at), as on its page
  const execs = { duration: null, before: execution?.before_s ?? 0, execTs: execution?.started_at ?? run.started_at };
  const duration = running ? runDuration(execs, now)
    : interrupted && typeof execution?.ended_at === "number" ? runDuration(execs, execution.ended_at)
      : run.duration_s;
  // an interrupted sub-workflow's run goes on when the run above it is resumed
  const resume = `ponder resume ${resumeId || run.id}`;
  const status = interrupted
    ? el("td", null, statusBadge("interrupted", { class: "st-interrupted", title: `its process is gone; continue it with ${resume}` }),
      el("div", { class: "muted small interrupted-note" }, "resume with ", el("code", null, resume)))
    : el("td", null, statusBadge(run.status));
  return el("tr", { "data-run-id": run.id, class: running ? "is-running" : interrupted ? "is-interrupted" : null },
    wf,
    el("td", { class: "mono small" }, el("a", { href: runPath(run.id) }, run.id)),
    status,
    el("td", { title: new Date(run.started_at * 1000).toISOString() }, fmtTime(run.started_at)),
    el("td", { class: "num" }, running ? `${fmtDuration(duration)}\u2026` : fmtDuration(duration)),
    el("td", { class: "num", title: run.prompt_tokens === null ? "" : `${run.prompt_tokens} prompt + ${run.completion_tokens} completion` },
      fmtTokens(run.prompt_tokens, run.completion_tokens)),
    el("td", { class: "num" }, run.n_steps === null ? "\u2014" : String(run.n_steps)),
  );
}

async function load() {
  const ticket = ++loading;
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (statusSel.value) q.set("status", statusSel.value);
  if (workflowIn.value.trim()) q.set("workflow", workflowIn.value.trim());
  if (topIn.checked) q.set("top_level", "true");
  let page;
  try {
    page = await getJSON(`${API}/runs?${q}`);
  } catch (err) {
    if (ticket !== loading) return;
    note.textContent = err instanceof ApiError ? `cannot list runs: ${err.detail}` : `cannot reach the viewer: ${err.message}`;
    note.className = "error";
    schedule();
    return;
  }
  if (ticket !== loading) return;
  note.className = "muted";
  note.textContent = `updated ${new Date().toLocaleTimeString()}`;
  if (page.runs.length === 0) {
    const filtered = statusSel.value || workflowIn.value.trim() || topIn.checked;
    fill(tbody, el("tr", { class: "empty" }, el("td", { colspan: "7" },
      offset > 0 ? "No more runs." : filtered ? "No runs match these filters." : "No runs yet: run a workflow with `ponder run`.")));
  } else {
    const interrupted = new Set(page.interrupted || []);
    const resumeIds = page.resume || {};
    const executions = page.executions || {};
    // the viewer's clock, which the runs' times are in (this machine's may be off)
    const now = typeof page.now === "number" ? page.now : Date.now() / 1000;
    fill(tbody, page.runs.map((r) => row(r, interrupted.has(r.id), resumeIds[r.id], executions[r.id], now)));
  }
  for (const run of page.runs) {
    if (!knownWorkflows.has(run.workflow)) {
      knownWorkflows.add(run.workflow);
      names.append(el("option", { value: run.workflow }));
    }
  }
  newer.disabled = offset === 0;
  older.disabled = !page.has_more;
  pageLabel.textContent = page.runs.length ? `runs ${offset + 1}\u2013${offset + page.runs.length}` : "";
  document.body.dataset.loaded = "1";
  // the first page asks again for new runs; a later one while it shows a run stored as
  // running: a live one ticks, and an interrupted one may be resumed (ponder resume)
  schedule(offset === 0 || page.runs.some((r) => r.status === "running"));
}

function schedule(refresh = true) {
  clearTimeout(timer);
  if (refresh) timer = setTimeout(() => document.visibilityState === "visible" ? load() : schedule(), REFRESH_MS);
}

function apply() {
  offset = 0;
  writeUrl();
  load();
}

let typing = null;
form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
statusSel.addEventListener("change", apply);
topIn.addEventListener("change", apply);
workflowIn.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(apply, 300); });
newer.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); writeUrl(); load(); });
older.addEventListener("click", () => { offset += PAGE; writeUrl(); load(); });

readUrl();
load();
