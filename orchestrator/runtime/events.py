"""Typed scheduler events: one class per event type, a tagged union on ``kind``.

Every state change of a run is one of these. Hooks (the trace store, the live
display, the SDK stream) receive them in order, in batches, before the scheduler
acts on the change.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticUndefined

_setattr = object.__setattr__


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    seq: int = Field(description="Position of the event in its run, from 0.")
    ts: float = Field(default_factory=time.time, description="Unix time, seconds.")

    @classmethod
    def trusted(cls, fields: dict[str, Any]) -> Any:
        """Build an event from values the scheduler made itself, already of the declared
        types, without validating them again: the same object ``cls(**fields)`` gives
        (fields, defaults, field order, ``model_fields_set``) at a fraction of the cost.
        Every field without a default must be given; ``ts`` too. ``fields`` is not kept.

        Only for the scheduler's own events (two per step); anything that comes from
        outside it (planners, executors, stored events) goes through ``cls(...)``.
        """
        template = _TEMPLATES.get(cls)
        if template is None:
            template = _TEMPLATES[cls] = _template(cls)
        data = template[0].copy()
        data.update(fields)  # keys already in the template keep the declared order
        for name, factory in template[1]:
            if name not in fields:
                data[name] = factory()
        inst = cls.__new__(cls)
        _setattr(inst, "__dict__", data)
        _setattr(inst, "__pydantic_fields_set__", set(fields))
        _setattr(inst, "__pydantic_extra__", None)
        _setattr(inst, "__pydantic_private__", None)
        return inst


_TEMPLATES: dict[type[_Event], tuple[dict[str, Any], list[tuple[str, Any]]]] = {}


def _template(cls: type[_Event]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """Every field in declared order with its default (None where there is none or it
    comes from a factory), and the fields whose factory makes a mutable value."""
    data: dict[str, Any] = {}
    mutable: list[tuple[str, Any]] = []
    for name, info in cls.model_fields.items():
        data[name] = None
        if info.default_factory is not None:
            made = info.default_factory()  # type: ignore[call-arg]
            if isinstance(made, dict | list | set):
                mutable.append((name, info.default_factory))
            else:
                data[name] = made  # frozen models (UsageModel), numbers: shared safely
        elif info.default is not PydanticUndefined:
            data[name] = info.default
    return data, mutable


class UsageModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    workflow: str
    inputs: dict[str, Any]
    spec: dict[str, Any] = Field(default_factory=dict, description="The workflow, as run.")
    source: str | None = Field(None, description="Path of the workflow file, if any.")
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    parent_attempt: int | None = Field(
        None, description="For the run of a sub-workflow (a `workflow` step, a spawn's "
        "child): the attempt of the parent step that runs it. Null for a top-level run, a "
        "replay or a fork (whose parent_run_id is the run it replays), and in traces written "
        "before Ponder recorded it.")
    resumed: bool = False
    ran_s: float | None = Field(
        None, description="For a resumed run: the seconds it had run in its earlier "
        "executions, as the resume counted them (their downtime left out; the time a "
        "killed one's sub-workflow runs worked after its last event in), which a later "
        "resume counts again. Null otherwise, and in traces written before Ponder "
        "recorded it.")
    backend: str | None = Field(
        None, description="The backend every model was given (`--backend`), null when "
        "none: resume and fork give it again unless told another.")
    tool_executor: str | None = Field(
        None, description="The executor tool steps ran on (`--tool-executor`), null for the "
        "default one (and in traces written before Ponder recorded it): resume runs them "
        "there again unless told another.")
    writer_host: str | None = Field(None, description="Host name of the process writing the run.")
    writer_pid: int | None = Field(None, description="Pid of the process writing the run.")
    writer_start: str | None = Field(
        None, description="That process's pid namespace, boot id and start time in clock "
        "ticks, so a reused pid is not taken for it; null where the platform cannot tell.")


class StepScheduled(_Event):
    """A step's inputs are ready; it waits for a slot in its pool."""

    kind: Literal["step_scheduled"] = "step_scheduled"
    step_id: str
    step_kind: str
    pool: str
    priority: float


class StepStarted(_Event):
    kind: Literal["step_started"] = "step_started"
    step_id: str
    step_kind: str
    attempt: int
    input: dict[str, Any] = Field(description="Resolved inputs: rendered prompt, tool args...")


class StepRetrying(_Event):
    kind: Literal["step_retrying"] = "step_retrying"
    step_id: str
    attempt: int = Field(description="The attempt that failed.")
    error: str
    error_type: str
    delay_s: float
    usage: UsageModel = Field(default_factory=UsageModel,
                              description="Tokens the failed attempt used (counted in the "
                                          "run's usage; none in traces written before).")
    retry_after_s: float | None = Field(
        None, description="The wait the backend asked for (an HTTP 429/503's Retry-After, "
        "in seconds): delay_s is at least this, up to the retry policy's max_backoff_s. "
        "Null when it asked none, and in traces written before Ponder read it.")


class StepSucceeded(_Event):
    kind: Literal["step_succeeded"] = "step_succeeded"
    step_id: str
    attempt: int
    output: Any
    raw: str | None = None
    usage: UsageModel = Field(default_factory=UsageModel)
    latency_s: float = 0.0
    meta: dict[str, Any] = Field(default_factory=dict)


class StepFailed(_Event):
    kind: Literal["step_failed"] = "step_failed"
    step_id: str
    attempt: int
    error: str
    error_type: str
    raw: str | None = None
    usage: UsageModel = Field(default_factory=UsageModel)
    #: ``reused_from``: the recorded step whose failure it repeats without running (a
    #: resumed fan-out's child whose namesake of the attempt before had failed), as a
    #: reused success's ``meta`` names the one it took; empty in traces written before it
    meta: dict[str, Any] = Field(default_factory=dict)


class StepSkipped(_Event):
    kind: Literal["step_skipped"] = "step_skipped"
    step_id: str
    reason: str
    cause_step: str | None = None
    #: the failed or cancelled step the skip goes back to through skipped steps (the
    #: same as ``cause_step`` one hop from it); absent from traces written before it
    root_step: str | None = None


class StepCancelled(_Event):
    kind: Literal["step_cancelled"] = "step_cancelled"
    step_id: str
    attempt: int = 0
    reason: str = "run cancelled"
    usage: UsageModel = Field(default_factory=UsageModel)


class GraphPatched(_Event):
    """Steps added to the live graph (map expansion, a planner's plan...)."""

    kind: Literal["graph_patched"] = "graph_patched"
    source_step: str
    reason: str
    steps: list[dict[str, Any]] = Field(description="Each: id, kind, deps, parent, spec.")


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    status: Literal["succeeded", "failed", "cancelled"]
    output: Any = None
    error: str | None = None
    usage: UsageModel = Field(default_factory=UsageModel)
    duration_s: float = 0.0
    superseded_by: str | None = Field(
        None, description="For a sub-workflow's run in flight when its parent run stopped, "
        "that the parent's resume abandoned (its step started a new child run): the run "
        "whose resume did, with status cancelled and the reason in error. Such a run will "
        "not go on; resuming it is refused.")


class PlanError(_Event):
    """A planner's output was rejected: a malformed plan, a tool outside the allowlist,
    too many steps, a plan that timed out, a joiner answer that is neither Finish nor
    Replan. Steps the plan already started keep running and keep their results."""

    kind: Literal["plan_error"] = "plan_error"
    step_id: str = Field(description="The plan step.")
    round: int = Field(description="Plan round, from 1 (a replan starts the next round).")
    attempt: int = Field(description="Try within the round, from 1 (a repair is the next try).")
    code: str = Field(description="unknown_tool, unknown_model, unknown_workflow, bad_args, "
                                  "bad_reference, bad_id, no_join, two_joins, after_end, "
                                  "empty_plan, cycle, garbage, too_many_steps, timeout, "
                                  "bad_json, bad_joiner...")
    error: str = Field(description="Readable message, with the plan line where there is one.")
    line: int | None = None
    raw: str | None = Field(None, description="The raw planner (or joiner) output.")
    will_retry: bool = Field(description="Whether the planner is asked again.")
    by: Literal["planner", "joiner"] | None = Field(
        None, description="Whose answer was rejected (None in traces written before it was "
                          "recorded). A joiner's tries count from 1 again in the round.")
    layer: int | None = Field(
        None, description="The AGoT layer whose proposal was rejected (AGoT has no rounds: "
                          "each layer is asked again on its own); None for a thought's own "
                          "error, other planners, and traces written before it was recorded.")


class PlanDecision(_Event):
    """The verdict on a plan round: finish with an answer, or replan. The joiner's, or
    the plan's own when it named its answer (``direct_answer``: no joiner was called)."""

    kind: Literal["plan_decision"] = "plan_decision"
    step_id: str = Field(description="The plan step.")
    round: int
    action: Literal["finish", "replan"]
    answer: Any = None
    reason: str | None = None
    raw: str | None = None
    by: Literal["plan", "joiner"] | None = Field(
        None, description="Who decided: the joiner, or the plan that named its answer "
                          "(None in traces written before it was recorded).")


class PlanCall(_Event):
    """A planner's or joiner's LLM call that completed, kept so that a resumed plan step
    takes its answer instead of asking again (see :mod:`orchestrator.runtime.durable`)."""

    kind: Literal["plan_call"] = "plan_call"
    step_id: str = Field(description="The plan step.")
    attempt: int = Field(description="The plan step's attempt that made the call.")
    request_id: str = ""
    key: str = Field(description="Digest of the request (model, messages, schema), the "
                                 "attempt's own step ids left out.")
    text: str = Field(description="The answer.")
    usage: UsageModel = Field(default_factory=UsageModel)
    finish_reason: str = Field("stop", description="Why the answer ended: `stop`, or "
                               "`length` when it was cut at max_tokens (a resumed plan step "
                               "takes it as cut, as the call that made it did). Absent in "
                               "traces written before it: `stop`.")


#: the kinds of the events that end a step's attempt, each with the tokens it used (a
#: step's tokens are the sum over them: the scheduler, ``ponder show`` and the viewer)
ATTEMPT_ENDS = frozenset({"step_retrying", "step_succeeded", "step_failed", "step_cancelled"})
Event = Annotated[
    RunStarted
    | StepScheduled
    | StepStarted
    | StepRetrying
    | StepSucceeded
    | StepFailed
    | StepSkipped
    | StepCancelled
    | GraphPatched
    | RunFinished
    | PlanError
    | PlanDecision
    | PlanCall,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
TERMINAL_STEP_EVENTS = ("step_succeeded", "step_failed", "step_skipped", "step_cancelled")
