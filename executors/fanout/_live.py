"""What the fan-out operators need from the running scheduler, and their child records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from orchestrator.errors import StepError
from orchestrator.runtime.child_ids import child_prefix, split_child_id
from orchestrator.runtime.contracts import ExecContext, Task, Usage
from orchestrator.spec.kinds_fanout import JoinStep

#: statuses of a child that has no output of its own to give
MARKER_STATUSES = frozenset({"failed", "cancelled", "skipped", "not_started", "rejected", "late"})


class LiveContext(ExecContext, Protocol):
    """An :class:`ExecContext` with the live-graph API of ``RunContext``."""

    scheduler: Any

    async def add_steps(self, parent_step_id: str, steps: Sequence[Any], *, reason: str,
                        locals_: dict[str, dict[str, Any]] | None = None,
                        cancellable: bool = False, handled: bool = False) -> list[str]: ...

    async def wait_steps(self, step_ids: Sequence[str]) -> dict[str, Any]: ...

    def cancel_steps(self, step_ids: Sequence[str]) -> None: ...

    def note_usage(self, step_id: str, usage: Usage) -> None: ...


def live(ctx: ExecContext, step_id: str) -> LiveContext:
    """The context as a :class:`LiveContext`.

    :raises StepError: when it cannot add steps to a live graph (a bare test context).
    """
    for name in ("add_steps", "wait_steps", "cancel_steps", "note_usage", "scheduler"):
        if getattr(ctx, name, None) is None:
            raise StepError(f"step {step_id!r}: fan-out steps need a running scheduler "
                            f"(this context has no `{name}`)", step_id=step_id)
    return cast(LiveContext, ctx)


@dataclass(frozen=True, slots=True)
class Owner:
    """The step that adds children (their parent in the trace) and their id prefix, which
    differs per attempt so that a retried fan-out never reuses a child's id."""

    step_id: str
    prefix: str

    @classmethod
    def of(cls, task: Task) -> Owner:
        return cls(task.step_id, child_prefix(task.step_id, task.attempt))

    def child(self, suffix: object) -> str:
        """A child's id: ``PREFIX[suffix]``."""
        return f"{self.prefix}[{suffix}]"

    @staticmethod
    def parent_of(child_id: str) -> str:
        """The id of the step that added ``child_id`` (the inverse of :meth:`child`, any
        attempt): ``s[3]``, ``s@2[0:4]`` -> ``s``; an id that is no child's, unchanged."""
        parts = split_child_id(child_id)
        return child_id if parts is None else parts[0]


def joins_of(ctx: LiveContext, fanout_id: str) -> list[JoinStep]:
    """The join steps in the graph that name ``fanout_id``, in graph order."""
    return [p.step for p in ctx.scheduler.plans.values()
            if p.kind == "join" and getattr(p.step, "of", None) == fanout_id]


@dataclass(slots=True)
class Child:
    """One child of a fan-out, as its operator or join sees it.

    :param index: position in the declared order (message, sample, item).
    :param status: ``pending``, ``running``, ``succeeded``, or a marker status:
        ``failed``, ``cancelled``, ``skipped``, ``not_started`` (a budget, or adaptive
        vote, stopped before it), ``rejected`` (finished, failed first-finish's check),
        ``late`` (finished after first-finish had its winner, or past the samples an
        adaptive stop was decided on).
    :param rank: finish order, from 0 (None when it never finished).
    """

    index: int
    step_id: str | None = None
    status: str = "pending"
    output: Any = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    rank: int | None = None
    #: its answer stopped at the model's max_tokens (it may be cut off)
    cut_short: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def entry(self) -> Any:
        """The child in a fan-out's output: its output, or an error marker."""
        if self.ok:
            return self.output
        marker: dict[str, Any] = {"error": self.error or self.status, "status": self.status,
                                  "child": self.step_id}
        if self.status in ("rejected", "late"):
            marker["output"] = self.output
        return marker


def is_marker(value: Any) -> bool:
    """Whether a fan-out output entry is an error marker (see :meth:`Child.entry`)."""
    return (isinstance(value, dict) and value.get("status") in MARKER_STATUSES
            and "error" in value and "child" in value)


def from_entry(index: int, value: Any) -> Child:
    """Rebuild a child from one entry of a fan-out's output."""
    if is_marker(value):
        return Child(index, value.get("child"), value["status"], value.get("output"),
                     str(value["error"]))
    return Child(index, None, "succeeded", value)


def samples_used(children: Sequence[Child]) -> int:
    """Children that ran to an end (an output or an error), not cancelled or never started."""
    return sum(c.status not in ("cancelled", "not_started", "pending") for c in children)


def usage_dict(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total}
