"""Fold a run's events into a summary: step records, usage, status. Pure.

The same folding serves the CLI's ``--json`` output, the SDK's RunResult, and
reading runs back from the trace store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.runtime import events as ev
from orchestrator.runtime.contracts import Usage


@dataclass(slots=True)
class StepRecord:
    id: str
    kind: str = ""
    status: str = "pending"
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    output: Any = None
    usage: Usage = field(default_factory=Usage)
    parent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "usage": {"prompt_tokens": self.usage.prompt_tokens,
                      "completion_tokens": self.usage.completion_tokens},
        }


@dataclass
class RunSummary:
    """Everything known of one run, folded from its events in order."""

    run_id: str
    workflow: str = ""
    status: str = "running"
    inputs: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    usage: Usage = field(default_factory=Usage)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    parent_run_id: str | None = None
    last_seq: int = -1

    def step(self, step_id: str) -> StepRecord:
        """The record of a step, created on first use."""
        rec = self.steps.get(step_id)
        if rec is None:
            rec = self.steps[step_id] = StepRecord(step_id)
        return rec

    def apply(self, e: Any) -> None:
        """Fold one event (events of other runs and unknown kinds are ignored)."""
        if getattr(e, "run_id", None) != self.run_id:
            return
        self.last_seq = max(self.last_seq, e.seq)
        kind = e.kind
        if kind == "run_started":
            self.workflow = e.workflow
            self.inputs = e.inputs
            self.started_at = self.started_at or e.ts
            self.parent_run_id = e.parent_run_id
            self.status = "running"
            for s in e.spec.get("steps", []) if isinstance(e.spec, dict) else []:
                if isinstance(s, dict) and "id" in s:
                    self.step(s["id"]).kind = s.get("kind", "llm")
        elif kind == "step_scheduled":
            self.step(e.step_id).kind = e.step_kind
        elif kind == "step_started":
            rec = self.step(e.step_id)
            rec.kind = e.step_kind
            rec.status = "running"
            rec.attempts = max(rec.attempts, e.attempt)
            rec.started_at = rec.started_at or e.ts
        elif kind == "step_succeeded":
            rec = self.step(e.step_id)
            rec.status, rec.finished_at, rec.output, rec.error = "succeeded", e.ts, e.output, None
            rec.attempts = max(rec.attempts, e.attempt, 1)
            self._usage(rec, e.usage)
        elif kind == "step_failed":
            rec = self.step(e.step_id)
            rec.status, rec.finished_at, rec.error = "failed", e.ts, e.error
            rec.attempts = max(rec.attempts, e.attempt)
            self._usage(rec, e.usage)
        elif kind == "step_skipped":
            rec = self.step(e.step_id)
            rec.status, rec.finished_at, rec.error = "skipped", e.ts, e.reason
        elif kind == "step_cancelled":
            rec = self.step(e.step_id)
            rec.status, rec.finished_at = "cancelled", e.ts
            rec.error = e.reason
            self._usage(rec, e.usage)
        elif kind == "graph_patched":
            for s in e.steps:
                rec = self.step(s["id"])
                rec.kind = s.get("kind", rec.kind)
                rec.parent = s.get("parent")
        elif kind == "run_finished":
            self.status = e.status
            self.output = e.output
            self.error = e.error
            self.finished_at = e.ts
            self.duration_s = e.duration_s

    def _usage(self, rec: StepRecord, usage: ev.UsageModel) -> None:
        u = Usage(usage.prompt_tokens, usage.completion_tokens)
        rec.usage += u
        self.usage += u


def fold(run_id: str, events: Iterable[Any]) -> RunSummary:
    """Fold events (in order) into a RunSummary."""
    summary = RunSummary(run_id)
    for e in events:
        summary.apply(e)
    return summary
