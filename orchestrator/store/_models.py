"""Read models of the trace store: what ``list_runs`` and ``read_run`` return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.runtime.events import Event


class RawEvent(BaseModel):
    """A stored event of a kind this version of Ponder does not know.

    Every field of the stored event is kept (as extra fields), so exporting and
    re-importing it loses nothing. :func:`~orchestrator.store.fold.fold_events`
    ignores it.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    run_id: str
    seq: int
    ts: float
    kind: str


StoredEvent: TypeAlias = Event | RawEvent
"""What the store hands back: a typed event, or a :class:`RawEvent` for an unknown kind."""

RunStatus: TypeAlias = Literal["running", "succeeded", "failed", "cancelled"]
StepStatus: TypeAlias = Literal[
    "pending", "scheduled", "running", "retrying", "succeeded", "failed", "skipped", "cancelled"
]


class RunInfo(BaseModel):
    """One row of ``list_runs``: a run's headline, kept up to date from its
    ``run_started`` and ``run_finished`` events.

    ``finished_at``, ``duration_s``, the token counts and ``n_steps`` stay ``None``
    until the run finishes; ``n_steps`` is then the number of distinct step ids
    in its events.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    workflow: str
    status: str = Field(description="running, succeeded, failed or cancelled.")
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    parent_attempt: int | None = Field(
        None, description="For the run of a sub-workflow (a `workflow` step, a spawn's "
        "child): the attempt of the parent step that runs it. Null for a run no step "
        "started: a top-level run, a replay or a fork (whose parent_run_id is the run it "
        "comes from; a fork's parent_step_id is the step it runs again from).")
    started_at: float
    finished_at: float | None = None
    duration_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    n_steps: int | None = None
    error: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs ``list_runs`` returns; every field set must match.

    :param status: only runs with this status (``running``, ``succeeded``...).
    :param workflow: only runs of this workflow name.
    :param parent_run_id: only the child runs of this run (its sub-workflows' runs, and
        the replays and forks of it).
    :param top_level: only runs that no step of another run started: not the runs of
        sub-workflows, but replays and forks (``parent_attempt`` is null).
    :param finished: ``True``: only finished runs; ``False``: only running ones.
    :param started_before: only runs started before this Unix time (exclusive).
    :param started_after: only runs started at or after this Unix time.
    :param id_prefix: only runs whose id starts with this text (case-sensitive).
    """

    status: str | None = None
    workflow: str | None = None
    parent_run_id: str | None = None
    top_level: bool = False
    finished: bool | None = None
    started_before: float | None = None
    started_after: float | None = None
    id_prefix: str | None = None

    def matches(self, run: RunInfo) -> bool:
        """Whether ``run`` passes this filter (the in-memory twin of the SQL ``WHERE``)."""
        return (
            (self.status is None or run.status == self.status)
            and (self.workflow is None or run.workflow == self.workflow)
            and (self.parent_run_id is None or run.parent_run_id == self.parent_run_id)
            and (not self.top_level or run.parent_attempt is None)
            and (self.finished is None or (run.status != "running") == self.finished)
            and (self.started_before is None or run.started_at < self.started_before)
            and (self.started_after is None or run.started_at >= self.started_after)
            and (self.id_prefix is None or run.id.startswith(self.id_prefix))
        )


class StepRecord(BaseModel):
    """One step of a run as ``ponder show`` presents it, folded from its events.

    :ivar attempts: how many times the step started (``step_started`` events).
    :ivar deps: ids of the steps it depends on. For a step declared in the workflow,
        those the compiler gives it, recomputed from ``run_started.spec`` and sorted:
        its references, ``after:``, a join's ``of`` (a first_finish or adaptive_vote
        join lists its map, though it starts with it), a map body's references, a
        branch's conditions, and for a branch's targets the branch; only declared ids;
        none for a step whose spec does not validate (an old trace). For a step added
        at run time, those its ``graph_patched`` event gives.
    :ivar pool: the executor pool it waited in, and ``scheduled_at`` when it began to
        wait: set only for a step that had to wait for a free slot of its pool (its
        ``step_scheduled`` event), ``None`` for one that started at once, stored run
        or not (the scheduler's fast path emits no event for it).
    :ivar started_at: when its first attempt started; ``finished_at``: when it
        reached its last terminal state.
    :ivar duration_s: how long it ran, in the run's execution that ended it: from its
        first start in that execution (or from the resume, for a step started before it)
        to its terminal state, so that the time between a crash and its resume is not
        counted (the time it ran in earlier executions is not either); for an attempt cut
        by a crash that the resume ended without running it again (``step_cancelled``:
        interrupted, superseded), the time it is known to have run: from its start to the
        last event of the execution that stopped. ``None`` until it ends, and for a step
        that never started. (A run's ``duration_s`` sums its executions: the README
        says what a crash leaves out.)
    :ivar error: the error of the last failed attempt, or why it was skipped or
        cancelled; cleared when a later attempt succeeds.
    :ivar spec: the step definition from the ``graph_patched`` event that added it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: str | None = None
    status: StepStatus = "pending"
    attempts: int = 0
    deps: list[str] = Field(default_factory=list)
    parent: str | None = None
    added_by: str | None = Field(None, description="The step whose patch added this step.")
    spec: dict[str, Any] | None = None
    pool: str | None = None
    scheduled_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    latency_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    input: dict[str, Any] | None = None
    output: Any = None
    raw: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None


class RunRecord(BaseModel):
    """Everything known of one run, folded from its events.

    Token counts are the run's ``run_finished`` usage once finished, else the sum
    over its steps so far. ``next_seq`` is the ``seq`` the run's next event takes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    workflow: str | None = None
    status: RunStatus = "running"
    inputs: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    parent_attempt: int | None = Field(
        None, description="The attempt of the parent step that runs this sub-workflow's "
        "run; null for a run no step started (see RunInfo).")
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    output: Any = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    resumes: int = Field(0, description="How many times the run was resumed.")
    steps: list[StepRecord] = Field(default_factory=list)
    n_events: int = 0
    next_seq: int = 0

    def step(self, step_id: str) -> StepRecord:
        """The step with this id.

        :raises KeyError: when the run has no such step.
        """
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)
