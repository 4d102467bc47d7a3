// The side panel: everything recorded about one step, as it stood at the replay
// position. Every value is shown as text.

import { runOrigin, runPath } from "./api.js";
import { clip, el, fill, fmtDuration, pretty, statusBadge } from "./dom.js";

/** The most characters of a value the panel lays out until the user asks for all of it:
 * a step's output of megabytes took the page a second or more to lay out, each time the
 * panel was drawn. */
export const SHOWN_MAX = 100000;
const shownWhole = new Set(); // step id + field of the values the user asked to see whole
let shownStep = null; // the step being drawn

function section(title, body, attrs = {}) {
  return el("section", { class: "detail-section", ...attrs }, el("h3", null, title), body);
}

function block(value, attrs = {}) {
  const text = pretty(value);
  const key = `${shownStep}\u0000${attrs["data-field"] ?? ""}`;
  if (text.length <= SHOWN_MAX || shownWhole.has(key)) return el("pre", { class: "block", ...attrs }, text);
  const pre = el("pre", { class: "block", ...attrs }, clip(text, SHOWN_MAX));
  const all = el("button", { type: "button", class: "linkish show-all" }, `show all ${text.length.toLocaleString("en")} characters`);
  all.addEventListener("click", () => {
    shownWhole.add(key);
    pre.textContent = text;
    all.remove();
  });
  return [pre, all];
}

function row(label, ...value) {
  return [el("dt", null, label), el("dd", null, ...value)];
}

function inputSections(s) {
  const input = s.input;
  if (!input || typeof input !== "object") return [];
  const out = [];
  const rest = { ...input };
  if (typeof input.system === "string") {
    out.push(section("System prompt", block(input.system, { "data-field": "system" })));
    delete rest.system;
  }
  if (typeof input.prompt === "string") {
    out.push(section("Prompt (rendered)", block(input.prompt, { "data-field": "prompt" })));
    delete rest.prompt;
  }
  if (typeof input.tool === "string" || input.args !== undefined) {
    out.push(section(`Tool call${typeof input.tool === "string" ? ": " + input.tool : ""}`, block(input.args ?? {}, { "data-field": "args" })));
    delete rest.tool;
    delete rest.args;
  }
  if (Object.keys(rest).length) out.push(section(out.length ? "Other input" : "Input", block(rest, { "data-field": "input" })));
  return out;
}

/**
 * Show step `id` of `state` in `host`.
 * @param {{children: Array, onSelect: Function, t0: number}} ctx
 */
export function renderDetail(host, state, id, ctx) {
  shownStep = id;
  const s = state.steps.get(id);
  if (!s) {
    fill(host, el("p", { class: "muted" }, `Step ${id} does not exist yet at this point of the run.`));
    return;
  }
  const t0 = ctx.t0 ?? 0;
  const a0 = s.attempts[0];
  const last = s.attempts[s.attempts.length - 1];
  const facts = el("dl", { class: "facts" },
    row("Status", statusBadge(s.status, { "data-field": "status" })),
    row("Kind", s.kind || "\u2014"),
    s.parent ? row("Inside", el("button", { type: "button", class: "linkish", "data-goto": s.parent }, s.parent)) : null,
    s.addedBy !== null && !s.declared ? row("Added by", el("span", null,
      el("button", { type: "button", class: "linkish", "data-goto": s.addedBy }, s.addedBy),
      s.reason ? ` (${s.reason})` : "")) : null,
    s.replanned ? row("Replanned", el("span", { class: "tag replanned" }, "added by replanning")) : null,
    row("Depends on", s.deps.length ? s.deps.map((d) => el("button", { type: "button", class: "linkish dep", "data-goto": d }, d)) : "\u2014"),
    row("Attempts", String(s.attempts.length)),
    row("Tokens", s.prompt || s.completion ? `${s.prompt} prompt + ${s.completion} completion` : "0"),
    row("Latency", s.latency !== null ? fmtDuration(s.latency) : "\u2014"),
    row("Time", a0 ? `+${fmtDuration(a0.start - t0)} \u2192 ${last.end !== null ? "+" + fmtDuration(last.end - t0) : "running"}` : s.scheduledAt !== null ? "waiting for a slot" : "not started"),
    s.pool ? row("Pool", s.pool) : null,
    s.cause ? row("Caused by", el("button", { type: "button", class: "linkish", "data-goto": s.cause }, s.cause)) : null,
  );
  const parts = [
    el("h2", { class: "detail-title" }, el("span", { class: "mono", "data-field": "id" }, id)),
    facts,
  ];
  const children = (ctx.children || []).filter((r) => r.parent_step_id === id && runOrigin(r) === "child");
  if (children.length) {
    parts.push(section("Child runs", el("ul", { class: "plain" }, children.map((r) =>
      el("li", null, el("a", { href: runPath(r.id) }, `${r.workflow} \u00b7 ${r.id}`), " ", statusBadge(r.status))))));
  }
  if (s.attempts.length) {
    parts.push(section("Attempts", el("table", { class: "attempts" },
      el("thead", null, el("tr", null, el("th", null, "#"), el("th", null, "start"), el("th", null, "duration"), el("th", null, "outcome"))),
      el("tbody", null, s.attempts.map((a) => [
        el("tr", null,
          el("td", null, String(a.n)),
          el("td", null, `+${fmtDuration(a.start - t0)}`),
          el("td", null, a.end !== null ? fmtDuration(a.end - a.start) : "running"),
          el("td", null, statusBadge(a.outcome === "retrying" ? "failed" : a.outcome))),
        a.error ? el("tr", { class: "attempt-error" }, el("td", { colspan: "4" }, el("pre", { class: "block error" }, a.error))) : null,
      ])))));
  }
  if (s.decisions.length) {
    // a round whose plan named its answer (direct_answer) had no joiner call
    const joinerOnly = s.decisions.every((d) => d.by !== "plan");
    parts.push(section(joinerOnly ? "Joiner decisions" : "Decisions", el("table", { class: "attempts", "data-field": "decisions" },
      el("thead", null, el("tr", null, el("th", null, "round"), el("th", null, "at"), el("th", null, "by"), el("th", null, "decision"))),
      el("tbody", null, s.decisions.map((d) => [
        el("tr", { "data-by": d.by }, el("td", null, String(d.round)), el("td", null, `+${fmtDuration(d.ts - t0)}`),
          el("td", null, d.by === "plan" ? "plan's answer" : "joiner"),
          el("td", null, el("span", { class: d.action === "replan" ? "tag replanned" : "tag" }, d.action))),
        d.reason || (d.answer !== undefined && d.answer !== null)
          ? el("tr", null, el("td", { colspan: "4" }, block(d.action === "replan" ? d.reason : d.answer)))
          : null,
      ])))));
  }
  if (s.planErrors.length) {
    parts.push(section("Rejected plans", el("div", { "data-field": "plan-errors" }, s.planErrors.map((p) => el("div", { class: "plan-error" },
      el("div", { class: "small" }, `${p.layer !== null ? `layer ${p.layer}` : `round ${p.round}`}, ${p.by === "joiner" ? "joiner try" : "try"} ${p.attempt}: ${p.code}${p.line !== null ? ` (line ${p.line})` : ""}${p.willRetry ? " \u2014 asked again" : ""}`),
      block(p.error, { class: "block error" }),
      p.raw !== null ? el("details", null, el("summary", null, "raw output"), block(p.raw)) : null)))));
  }
  parts.push(...inputSections(s));
  if (s.output !== undefined && s.status === "succeeded") {
    parts.push(section("Output (parsed)", block(s.output, { "data-field": "output" })));
  }
  if (s.raw !== null && s.raw !== undefined) parts.push(section("Raw output", block(s.raw, { "data-field": "raw" })));
  if (s.error) {
    parts.push(section(s.status === "skipped" ? "Why skipped" : s.status === "cancelled" ? "Why cancelled" : "Error",
      block(s.errorType ? `${s.errorType}: ${s.error}` : s.error, { "data-field": "error", class: "block error" })));
  }
  if (s.meta && Object.keys(s.meta).length) parts.push(section("Meta", block(s.meta, { "data-field": "meta" })));
  fill(host, parts);
  for (const b of host.querySelectorAll("[data-goto]")) b.addEventListener("click", () => ctx.onSelect(b.getAttribute("data-goto")));
}
