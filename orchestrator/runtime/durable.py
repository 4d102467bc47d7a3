"""Resume, replay and fork runs from their recorded events.

- **resume**: continue an interrupted run under the same id; steps that succeeded are
  not executed again (their outputs come from the trace), steps that failed fail again
  without running (their recorded error; what needs them is skipped again), steps that
  were in flight run again with the next attempt number. A resumed exact replay goes on
  serving every step from the run it replays. A sub-workflow (a ``workflow`` step, a spawn's
  child) that was in flight goes on as its recorded child run, under the child's own id
  and the same way, down to its own children; a child that had succeeded gives its
  recorded output, one that failed was a failed attempt (the new attempt starts a new
  child). That needs the child runs: ``resume(..., children=recorded_children(store))``.
  A fan-out in flight runs again with children named after its new attempt; each whose
  namesake of the attempt before had succeeded takes that output, and each whose namesake
  had failed fails again with its recorded error (:class:`Known`).
  A plan step in flight runs again taking what its cut attempt recorded
  (:class:`EarlierPlan`): its planner's and joiner's answers, its actions' outputs; an
  action it had in flight goes on from the cut one (a plan inside the plan takes what
  that one recorded, a sub-workflow continues its child run).
- **replay**: re-execute a recorded run with every step's result served from the trace
  (no model or tool is called; a step that failed fails again with its recorded error, so
  that the replay ends as the run did); a step whose rendered input differs from the
  recording fails loudly, because that means the workflow changed.
- **fork** (``replay --from STEP``): a new run, linked to its parent, that re-executes
  STEP and everything after it for real, with everything upstream served from the trace
  (optionally with STEP's output or some inputs replaced).
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import networkx as nx
from pydantic import TypeAdapter, ValidationError

from orchestrator.errors import ConfigError, EventConflict, PonderError, RunNotFound, StepError
from orchestrator.graph.compile import CompiledGraph
from orchestrator.graph.subworkflows import aliases_in, model_aliases
from orchestrator.runtime import events as ev
from orchestrator.runtime._process import writer_alive
from orchestrator.runtime.child_ids import child_prefix, split_child_id
from orchestrator.runtime.contracts import ExecContext, Executor, Hook, Result, Task, Usage
from orchestrator.runtime.engine import (
    RunContext,
    RunResult,
    compile_graph,
    execute,
    validate_inputs,
)
from orchestrator.runtime.registry import Registry
from orchestrator.runtime.run_checks import (
    AnyHook,
    aliases_used,
    as_hooks,
    check_backend,
    check_inputs,
    check_model_configs,
    check_tool_executor,
)
from orchestrator.runtime.scheduler import Scheduler
from orchestrator.spec.base import BOOL_NOT_NUMBER
from orchestrator.spec.loader import load_yaml
from orchestrator.spec.models import STEP_KINDS, ModelConfig, Step, WorkflowSpec
from orchestrator.spec.schema_check import schema_problem


class RunAlreadyFinished(PonderError):
    """Resume of a run that already succeeded or failed."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} already finished ({status}); nothing to resume")
        self.status = status


class RunSuperseded(RunAlreadyFinished):
    """Resume of a sub-workflow's run that the resume of a run above it abandoned (it
    started a new child run for the step instead): it will not go on.

    :param run_id: the run; ``superseded_by``: the run whose resume abandoned it;
        ``reason``: its recorded reason.
    """

    def __init__(self, run_id: str, superseded_by: str, reason: str) -> None:
        PonderError.__init__(self, (
            f"run {run_id} will not go on ({reason}); nothing to resume: run "
            f"{superseded_by} goes on without it (`ponder show {superseded_by}`)"))
        self.status = "cancelled"
        self.superseded_by = superseded_by


class RunStillRunning(PonderError):
    """Resume of a run whose writer process is alive on this host.

    :param run_id: the run; ``pid`` and ``host``: the process writing it (``pid`` 0 and
        ``host`` empty where that is not known).
    :param message: the message, where it is not the one of a run resumed while it runs.
    """

    def __init__(self, run_id: str, pid: int, host: str, message: str | None = None) -> None:
        super().__init__(message or (
            f"run {run_id} is still running (process {pid} on {host}); only an interrupted "
            "run can be resumed: wait for it to finish, or stop that process first"))
        self.run_id = run_id
        self.pid = pid
        self.host = host


class RunBeingResumed(RunStillRunning):
    """Resume of a run that another process began resuming at the same time: both found
    it interrupted, and the other one's first events were stored first (a resume stops at
    its first batch of events that cannot be stored, before it runs anything)."""

    def __init__(self, run_id: str, pid: int = 0, host: str = "") -> None:
        by = f"process {pid} on {host}" if pid else "another process"
        super().__init__(run_id, pid, host, (
            f"run {run_id} is being resumed by {by}, which started resuming it at the same "
            f"time as this command; wait for it to finish (`ponder show {run_id}` shows the "
            "run)"))


class SubRunStillRunning(RunStillRunning):
    """Resume of a run whose sub-workflow's run, which the resume would go on with (a
    step's attempt in flight when the run stopped ran it), is being written by another
    live process: a ``ponder resume`` of that run. The resume stops without recording its
    run (or that step) as failed: the run stays interrupted, to be resumed once the other
    process is done.

    :param run_id: the run resumed; ``child_id``: its sub-workflow's run (or one below);
        ``pid`` and ``host``: the process writing that.
    """

    def __init__(self, run_id: str, child_id: str, pid: int, host: str) -> None:
        by = f"process {pid} on {host}" if pid else "another process"
        super().__init__(run_id, pid, host, (
            f"sub-workflow run {child_id} of run {run_id} is being resumed by {by}; wait "
            f"for it to finish, then resume run {run_id}"))
        self.child_id = child_id


class RecordedFailure(StepError):
    """A replayed step that failed in the recorded run fails again with its recorded
    error (its message and its type's name), so that the replay ends as the recorded
    run did."""

    def __init__(self, message: str, *, error_type: str, step_id: str | None = None,
                 raw_output: str | None = None) -> None:
        super().__init__(message, step_id=step_id, raw_output=raw_output)
        #: the recorded error's type name, which the replay's ``step_failed`` carries
        self.recorded_type = error_type


class ReplayMismatch(StepError):
    """A replayed step's rendered input differs from the recording."""


@dataclass
class Recording:
    """What a trace says about each step: outputs, inputs, attempts."""

    run_id: str
    workflow: str
    status: str
    inputs: dict[str, Any]
    spec: dict[str, Any]
    source: str | None
    next_seq: int
    #: the ``run_started`` event in force (its writer), ``None`` once the run finished
    writer: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    rendered: dict[str, Any] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    usage: dict[str, Usage] = field(default_factory=dict)
    #: tokens of every attempt recorded (succeeded, failed or cancelled)
    spent: Usage = field(default_factory=Usage)
    #: seconds it ran in its recorded executions, each from its ``run_started`` to its
    #: last event (the downtime between them left out); a resume adds the time a killed
    #: execution's sub-workflow runs show it worked on after that (:func:`_count_child_time`)
    #: and records the sum in its ``run_started.ran_s``, read back here for those before
    live_s: float = 0.0
    #: when its last event was written
    last_ts: float = 0.0
    #: each step's latest ``step_succeeded`` event (what a fork carries into its trace)
    succeeded: dict[str, Any] = field(default_factory=dict)
    #: each step's latest ``step_failed`` event (what a replay fails it with)
    failed: dict[str, Any] = field(default_factory=dict)
    #: each step added at run time (a map's item, a fan-out's sample, a plan's step) ->
    #: the step that added it (from ``graph_patched`` events)
    added_by: dict[str, str] = field(default_factory=dict)
    #: the run and step it belongs to (a sub-workflow's run) or replays (a fork)
    parent: tuple[str, str | None] | None = None
    #: for a sub-workflow's run, the attempt of the parent step that ran it last
    parent_attempt: int | None = None
    #: the ``--backend`` override it last ran with
    backend: str | None = None
    #: the executor its tool steps last ran on (``--tool-executor``), None for the default
    tool_executor: str | None = None
    #: the latest ``run_finished`` event (``None`` while it runs or once resumed)
    finished: Any = None
    #: each step whose latest attempt did not end (in flight when the run stopped, or
    #: cancelled with it) -> that attempt: a sub-workflow it ran may go on
    unfinished: dict[str, int] = field(default_factory=dict)
    #: each step whose next attempt was due after a retry back-off when the run stopped
    #: (killed or cancelled in it) -> when its ``step_retrying`` was written and its
    #: ``delay_s``: a resume waits out the rest
    retry_due: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: each step added at run time -> its definition (``graph_patched``'s ``spec``)
    added_specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: each step added at run time -> the attempt of the step that added it (0: unknown)
    added_in: dict[str, int] = field(default_factory=dict)
    #: each plan step -> its planner's and joiner's completed LLM calls (``plan_call``)
    plan_calls: dict[str, list[Any]] = field(default_factory=dict)
    #: each step that a resumed plan step added -> the recorded step whose output it
    #: takes (an action its interrupted attempt had finished); filled while resuming
    reused: dict[str, str] = field(default_factory=dict)
    #: each step that a resumed plan step added -> the recorded step it goes on from (an
    #: action in flight when the run stopped: a plan's recorded calls and actions, a
    #: sub-workflow's child run); filled while resuming
    continued: dict[str, str] = field(default_factory=dict)
    #: each step whose latest state is not an end (added, scheduled, running or waiting
    #: to retry when the run stopped) -> what a ``step_cancelled`` for it records: the
    #: attempt, the tokens of that attempt no event counted, and why (see
    #: ``execute``'s ``left_open``)
    left_open: dict[str, tuple[int, Usage, str]] = field(default_factory=dict)
    #: every step the trace has an event of (added, scheduled, started, ended)
    seen: set[str] = field(default_factory=set)
    #: the tokens each ``step_cancelled`` counted, by step and attempt: a sub-workflow's
    #: run that such an attempt was running, and that goes on when the run is resumed, had
    #: spent them already (see :meth:`_RecordedChildren.run_child`)
    cancelled_usage: dict[tuple[str, int], Usage] = field(default_factory=dict)
    #: each step whose latest attempt the run stopped in with no event after its
    #: ``step_started`` (its process killed) -> that attempt
    killed: dict[str, int] = field(default_factory=dict)


#: events after which a step has no retry back-off to wait out (a step_cancelled keeps it:
#: a run cancelled in a back-off and resumed at once still owes the server its wait; so
#: does a step_started: a resumed attempt writes it before waiting out the rest, and where
#: the back-off was over before the attempt started, what is left of it is nothing)
_RETRY_NOT_DUE = frozenset({"step_succeeded", "step_failed", "step_skipped"})


def recording_from_events(events: Sequence[Any]) -> Recording:
    """Collect a run's recorded outputs and inputs from its events (in order)."""
    first = next((e for e in events if e.kind == "run_started"), None)
    if first is None:
        raise PonderError("the trace has no run_started event; it cannot be resumed or replayed")
    last_status = "running"
    rec = Recording(first.run_id, first.workflow, "running", dict(first.inputs),
                    _null_defaults_kept(dict(first.spec), first.inputs),
                    first.source, max(e.seq for e in events) + 1)
    if first.parent_run_id is not None:
        rec.parent = (first.parent_run_id, first.parent_step_id)
    #: each step's latest step-level event kind
    last_of: dict[str, str] = {}
    #: each step's latest event about an attempt (a step_scheduled or graph_patched after
    #: its step_cancelled says nothing of the cancelled attempt, whose child may go on)
    attempt_last: dict[str, str] = {}
    #: the tokens of each plan step attempt's completed LLM calls, and the attempts that
    #: ended (their step_failed / step_cancelled event counts those tokens already)
    call_usage: dict[tuple[str, int], Usage] = {}
    ended: set[tuple[str, int]] = set()
    #: the attempts that failed and were retried (step_retrying)
    retried: set[tuple[str, int]] = set()
    began: float | None = None  # when the execution being read started
    last_ts = 0.0
    for e in events:
        kind = e.kind
        if kind == "run_finished" and getattr(e, "superseded_by", None):
            # written by the resume that abandoned it, later: it did not run until then
            rec.finished, rec.writer, last_status = e, None, e.status
            continue
        if kind == "run_started":
            if began is not None:
                rec.live_s += max(0.0, last_ts - began)
            # what the resume that wrote it counted of the executions before (the time
            # a killed one's sub-workflows worked after its last event in): no later
            # resume looks at their children again
            rec.live_s = max(rec.live_s, getattr(e, "ran_s", None) or 0.0)
            began = e.ts
        last_ts = max(last_ts, e.ts)
        if kind == "step_retrying":
            rec.retry_due[e.step_id] = (e.ts, e.delay_s)
            retried.add((e.step_id, e.attempt))
        elif kind in _RETRY_NOT_DUE and e.step_id in rec.retry_due:
            del rec.retry_due[e.step_id]
        if kind == "step_started":
            rec.attempts[e.step_id] = max(rec.attempts.get(e.step_id, 0), e.attempt)
            rec.rendered[e.step_id] = e.input
            last_of[e.step_id] = kind
        elif kind == "step_succeeded":
            rec.outputs[e.step_id] = e.output
            rec.succeeded[e.step_id] = e
            rec.usage[e.step_id] = Usage(e.usage.prompt_tokens, e.usage.completion_tokens)
            last_of[e.step_id] = kind
        elif kind in ("step_failed", "step_retrying", "step_cancelled", "step_skipped",
                      "step_scheduled"):
            last_of[e.step_id] = kind
            if kind == "step_failed":
                rec.failed[e.step_id] = e
        if kind in _ATTEMPT_EVENTS:
            attempt_last[e.step_id] = kind
        if kind == "graph_patched":
            for added in e.steps:
                parent = added.get("parent") or e.source_step
                if added.get("id"):
                    last_of.setdefault(added["id"], kind)
                if parent and added.get("id") and added["id"] != parent:
                    rec.added_by[added["id"]] = parent
                    rec.added_specs[added["id"]] = added.get("spec") or {}
                    rec.added_in[added["id"]] = rec.attempts.get(parent, 0)
        elif kind == "plan_call":
            rec.plan_calls.setdefault(e.step_id, []).append(e)
            key = (e.step_id, e.attempt)
            call_usage[key] = call_usage.get(key, Usage()) + Usage(
                e.usage.prompt_tokens, e.usage.completion_tokens)
        elif kind == "run_started":
            last_status = "running"
            rec.writer = e
            rec.finished = None
            rec.backend = getattr(e, "backend", None)
            rec.tool_executor = getattr(e, "tool_executor", None)
            if getattr(e, "parent_attempt", None) is not None:
                rec.parent_attempt = e.parent_attempt
        elif kind == "run_finished":
            last_status = e.status
            rec.writer = None
            rec.finished = e
        if kind in ("step_succeeded", "step_failed", "step_cancelled", "step_retrying"):
            rec.spent += Usage(e.usage.prompt_tokens, e.usage.completion_tokens)
            if kind == "step_cancelled" and (e.usage.prompt_tokens or e.usage.completion_tokens):
                key = (e.step_id, e.attempt)
                rec.cancelled_usage[key] = rec.cancelled_usage.get(key, Usage()) + Usage(
                    e.usage.prompt_tokens, e.usage.completion_tokens)
            # (a step_retrying written before it carried usage counts none: its plan
            # calls' tokens, below, are the attempt's)
            if kind != "step_retrying" or e.usage.prompt_tokens or e.usage.completion_tokens:
                ended.add((e.step_id, e.attempt))
    if began is not None:
        rec.live_s += max(0.0, last_ts - began)
    rec.last_ts = last_ts
    for key, used in call_usage.items():  # a plan step cut mid-way spent them too
        if key not in ended:
            rec.spent += used
    rec.status = last_status
    rec.seen = set(last_of)
    # an attempt that a step_retrying ended had failed: a step cancelled in the back-off
    # after it (its step_cancelled names that attempt) has no attempt in flight, and its
    # next attempt starts afresh (a new child run, a new plan), as it would have
    rec.unfinished = {sid: rec.attempts[sid] for sid, kind in attempt_last.items()
                      if kind in ("step_started", "step_cancelled") and sid in rec.attempts
                      and (sid, rec.attempts[sid]) not in retried}
    rec.killed = {sid: attempt for sid, attempt in rec.unfinished.items()
                  if attempt_last[sid] == "step_started"}
    for sid, kind in last_of.items():
        if kind in _OPEN:
            attempt = rec.attempts.get(sid, 0)
            cut = call_usage.get((sid, attempt), Usage()) if (sid, attempt) not in ended \
                else Usage()
            rec.left_open[sid] = (attempt, cut, _superseded_reason(sid, rec))
    return rec


def _null_defaults_kept(spec: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """A recorded workflow (``run_started.spec``) with ``default: null`` given back to each
    input its run took ``null`` for that the record declares with neither a default nor
    ``required``: a Ponder older than the record that keeps written defaults left that
    default out (it equals the field's), so the input read as required and the run's own
    recorded ``null`` was refused ("input 'x' must be string, got None"): such a run could
    not be resumed, replayed or forked. A required input never takes ``null``, so that
    ``null`` says the input was optional, with that default."""
    declared = spec.get("inputs")
    if not isinstance(declared, dict):
        return spec
    lost = [name for name, decl in declared.items()
            if isinstance(decl, dict) and name in inputs and inputs[name] is None
            and "default" not in decl and decl.get("required") is None]
    if not lost:
        return spec
    kept = {**declared, **{name: {**declared[name], "default": None} for name in lost}}
    return {**spec, "inputs": kept}


#: the step events that say how an attempt went (see ``attempt_last``)
_ATTEMPT_EVENTS = frozenset({"step_started", "step_succeeded", "step_failed", "step_retrying",
                             "step_cancelled", "step_skipped"})

#: a step's latest events that leave it open: added, scheduled, running, retrying
_OPEN = frozenset({"graph_patched", "step_scheduled", "step_started", "step_retrying"})


def _superseded_reason(step_id: str, rec: Recording) -> str:
    """Why a step left open by the stopped execution is cancelled when a resumed one
    ends without having run it again under its id."""
    owner = rec.added_by.get(step_id)
    if owner is not None and owner in rec.unfinished:
        return f"superseded: {owner!r} ran again after the run was resumed"
    return "superseded: the resumed run ended without running it again"


def replayed_workflow(rec: Recording, *, registry: Registry | None = None,
                      workflow_file: str | Path | None = None) -> CompiledGraph:
    """The workflow that :func:`replay` runs for the recorded run ``rec`` (what ``ponder
    replay`` checks its options against before it starts): ``workflow_file`` when one
    is given; else the recorded source file, as it is now, where it still exists; else
    the workflow as recorded in the trace (``rec.spec``). A recorded workflow compiles
    with the model aliases it ran with (see :func:`_aliases_run_bundled`), and its
    source file is served the models its run was (a ``ponder run --model`` config, as
    :func:`resume` serves them); only a ``workflow_file`` given declares others.

    :param registry: default: :meth:`Registry.default`.
    :raises ValidationFailed: when that workflow cannot be read (``workflow_file``
        missing included) or does not compile.
    """
    return _graph_for(rec, registry or Registry.default(), workflow_file, prefer_file=True)


def _graph_for(rec: Recording, registry: Registry, workflow_file: str | Path | None,
               prefer_file: bool) -> CompiledGraph:
    """The workflow to run for ``rec``: :func:`replayed_workflow`'s choice; a resume
    (not ``prefer_file``) takes the recorded workflow over its source file, which may
    have changed since the run started."""
    path = Path(workflow_file) if workflow_file else (Path(rec.source) if rec.source else None)
    # a file given is read, also where it is missing (an error naming it): only the
    # recorded one may be gone
    if path is not None and (workflow_file or (prefer_file and path.is_file())):
        spec, smap = load_yaml(path)
        given: frozenset[str] = frozenset()
        recorded = None if workflow_file else _readable_spec(rec)
        if recorded is not None:
            # the recorded file (not one given): as it ran, its aliases included, and its
            # models served as they were (`ponder run --model` replaced some)
            given = _aliases_run_bundled(recorded)
            spec.models.update(recorded.models or _served_bundled(recorded, rec))
        return compile_graph(spec, smap, registry=registry, base_dir=path.resolve().parent,
                             models_given=given)
    spec = _recorded_spec(rec, can_give_file=prefer_file)
    spec.models.update(_served_bundled(spec, rec))
    base = path.resolve().parent if path is not None else Path(".")
    return compile_graph(spec, registry=registry, base_dir=base,
                         models_given=_aliases_run_bundled(spec))


def _recorded_spec(rec: Recording, *, can_give_file: bool) -> WorkflowSpec:
    """The workflow recorded in the run's ``run_started``.

    :param can_give_file: the caller may give the workflow's file instead (replay).
    :raises PonderError: when it does not read as a workflow of this version of Ponder
        (a trace written or imported from another), naming the first problem; it was
        pydantic's ValidationError, an internal error to the CLI.
    """
    try:
        return _as_recorded(rec.spec)
    except ValidationError as exc:
        first, more = exc.errors()[0], exc.error_count() - 1
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        instead = "; replay it with its file (--workflow FILE)" if can_give_file else ""
        raise PonderError(
            f"run {rec.run_id}: the workflow {rec.workflow!r} its trace records does not "
            f"read as a workflow of this version of Ponder ({where}: {first['msg']}"
            f"{f'; and {more} more' if more else ''}){instead}") from None


def _readable_spec(rec: Recording) -> WorkflowSpec | None:
    """The recorded workflow, which its source file is compiled with (the model aliases
    it ran with, :func:`_aliases_run_bundled`, and the models it was served: ``ponder run
    --model`` records the config it serves an alias with); ``None`` when it is not
    recorded, or no longer reads as one."""
    try:
        return _as_recorded(rec.spec)
    except ValueError:
        return None


def _as_recorded(data: dict[str, Any]) -> WorkflowSpec:
    """A workflow as a run recorded it (``run_started.spec``). A boolean where a number
    belongs, which Ponder took as 1 or 0 before it refused one (``max_tokens: true`` ran
    with 1 token), reads as the number the run had, so that the run resumes and replays
    as it ran (it was refused: "does not read as a workflow of this version"); so does a
    quoted number in a static plan's steps (see :func:`_plan_options_as_read`).

    :raises ValidationError: for any other problem.
    """
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        as_ran = _bools_as_numbers(data, exc)
        if as_ran is None:
            raise
        spec = WorkflowSpec.model_validate(as_ran)
    return _plan_options_as_read(spec)


def _plan_options_as_read(spec: WorkflowSpec) -> WorkflowSpec:
    """``spec`` with each plan step's ``options:`` (recorded as written) read as its run
    read them (:meth:`Registry.planner_recorded_options`: a static plan's quoted numbers,
    refused since, are the numbers that run had)."""
    for i, step in enumerate(spec.steps):
        if step.kind == "plan" and step.options:
            options = Registry.planner_recorded_options(step.planner, step.options)
            if options != step.options:
                spec.steps[i] = step.model_copy(update={"options": options})
    return spec


def _bools_as_numbers(data: dict[str, Any], exc: ValidationError) -> dict[str, Any] | None:
    """A copy of ``data`` with each boolean that ``exc`` refuses where a number belongs
    replaced by that number; ``None`` when it refuses none."""
    copied: dict[str, Any] | None = None
    for error in exc.errors():
        if error["type"] != BOOL_NOT_NUMBER:
            continue
        copied = copied if copied is not None else copy.deepcopy(data)
        found = _boolean_at(copied, tuple(error["loc"]))
        if found is not None:
            holder, key = found
            holder[key] = int(holder[key])
    return copied


def _boolean_at(value: Any, loc: tuple[Any, ...]) -> tuple[Any, Any] | None:
    """The container and key of the boolean that the validation error path ``loc``
    leads to from ``value``, the path's parts that name no key left out (a tagged
    union's tag: ``llm``); ``None`` when it leads to none. A part that names a key may
    still be a tag: a ``tool`` step's field ``tool`` (the tool's name) is named like
    its kind's tag, so the path is also followed without it."""
    if not loc:
        return None
    part, rest = loc[0], loc[1:]
    if (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)):
        inner = value[part]
        if not rest and isinstance(inner, bool):
            return value, part
        found = _boolean_at(inner, rest) if rest else None
        if found is not None:
            return found
    return _boolean_at(value, rest)


def _aliases_run_bundled(spec: WorkflowSpec) -> frozenset[str]:
    """The model aliases a recorded workflow without ``models:`` names: its run served
    each on the bundled model (Ponder did so before it refused an undeclared alias), so
    that the recorded workflow compiles again as it ran (resume, replay)."""
    return frozenset() if spec.models else model_aliases(spec)


def _served_bundled(spec: WorkflowSpec, rec: Recording) -> dict[str, ModelConfig]:
    """For a recorded workflow without ``models:``, each model alias its run named (its
    steps', and those of the steps its planners added at run time) declared as served
    then: on the bundled model (Ponder did so before it refused an undeclared alias), so
    that the run resumes and replays as it ran. Declared, they also pass the check a plan
    step's planned steps get since (a plan error ``unknown_model``, which failed the plan
    step of such a run when it ran again); ``models_given`` only passes the compile.
    None for a workflow with ``models:``."""
    if spec.models:
        return {}
    named = model_aliases(spec) | aliases_in(list(rec.added_specs.values()))
    return {alias: ModelConfig() for alias in sorted(named - {"default"})}


class ChildRuns(Protocol):
    """Where :func:`resume` finds the child runs that a run's steps started (its
    sub-workflows' runs): :func:`recorded_children` reads them from a trace store."""

    async def children(self, parent_run_id: str) -> dict[tuple[str, int], str]:
        """The child runs of ``parent_run_id`` by the step and the attempt that last ran
        each (``run_started``'s ``parent_step_id`` and ``parent_attempt``): the newest
        where several share them."""
        ...

    async def events(self, run_id: str) -> Sequence[Any]:
        """A child run's events, in order."""
        ...


def recorded_children(store: Any) -> ChildRuns:
    """The :class:`ChildRuns` of a trace store (anything with ``list_runs`` and
    ``events`` like :class:`~orchestrator.store.TraceStore`)."""
    return _StoreChildren(store)


class _StoreChildren:
    def __init__(self, store: Any) -> None:
        self._store = store

    async def children(self, parent_run_id: str) -> dict[tuple[str, int], str]:
        from orchestrator.store._models import RunFilter

        # the runs this resume starts meanwhile come after: the pages stay put
        flt = RunFilter(parent_run_id=parent_run_id, started_before=time.time())
        found: dict[tuple[str, int], str] = {}
        offset = 0
        while page := await self._store.list_runs(flt, limit=_CHILD_PAGE, offset=offset):
            offset += len(page)
            for info in page:  # newest first
                started = await self._store.events(info.id, kinds=("run_started",))
                last = started[-1] if started else None
                step = getattr(last, "parent_step_id", None)
                attempt = getattr(last, "parent_attempt", None)
                if step is not None and attempt is not None:  # not a fork or a replay
                    found.setdefault((step, attempt), info.id)
            if len(page) < _CHILD_PAGE:
                break
        return found

    async def events(self, run_id: str) -> Sequence[Any]:
        return list(await self._store.events(run_id))


_CHILD_PAGE = 200


class _OnceChildren:
    """A :class:`ChildRuns` that asks ``runs`` for each run's children once, and for each
    run's events once: before it starts, a resume reads a child run the step of a cut
    attempt ran for several purposes (is it being resumed, what did it spend, until when
    did it work, is it abandoned). :meth:`anew` reads each run's events again, as they
    are by then."""

    def __init__(self, runs: ChildRuns,
                 children: dict[str, dict[tuple[str, int], str]] | None = None) -> None:
        self._runs = runs
        self._children = {} if children is None else children
        self._events: dict[str, Sequence[Any]] = {}

    async def children(self, parent_run_id: str) -> dict[tuple[str, int], str]:
        known = self._children.get(parent_run_id)
        if known is None:
            known = self._children[parent_run_id] = await self._runs.children(parent_run_id)
        return known

    async def events(self, run_id: str) -> Sequence[Any]:
        known = self._events.get(run_id)
        if known is None:
            known = self._events[run_id] = await self._runs.events(run_id)
        return known

    def anew(self) -> _OnceChildren:
        """The same runs with none of their events read yet (the children as known): for
        the reads of a run going on, which must see what was written since the resume
        began (another process resuming a child, or having finished it)."""
        return _OnceChildren(self._runs, self._children)


def _listeners(hooks: Sequence[Any]) -> list[Hook]:
    """The hooks as the run awaits them: a plain function is wrapped, as
    :meth:`Workflow.run <orchestrator.sdk.Workflow.run>` wraps it (it raised TypeError
    in the middle of a resumed or replayed run).

    :raises ConfigError: for a hook that is not callable, or one given alone (not in a
        list), before anything is recorded.
    """
    return as_hooks(hooks)


_STEP: TypeAdapter[Any] = TypeAdapter(Step)


def _added_steps(rec: Recording) -> list[Any]:
    """The steps added at run time that have yet to succeed, as their ``graph_patched``
    recorded them (one that no longer reads as a step is left to the run)."""
    steps = []
    for sid, data in rec.added_specs.items():
        if sid not in rec.succeeded:
            try:
                steps.append(_STEP.validate_python(data))
            except ValidationError:
                continue
    return steps


def _check_writer_gone(rec: Recording) -> None:
    """:raises RunStillRunning: when the process writing the run is alive on this host
        (two writers would run its steps twice and fight over its events)."""
    host, pid = getattr(rec.writer, "writer_host", None), getattr(rec.writer, "writer_pid", None)
    if pid != os.getpid() and writer_alive(host, pid, getattr(rec.writer, "writer_start", None)):
        raise RunStillRunning(rec.run_id, pid or 0, host or "")


async def resume(events: Sequence[Any], *, registry: Registry | None = None,
                 hooks: Sequence[AnyHook] = (), backend: str | None = None,
                 children: ChildRuns | None = None,
                 on_scheduler: Callable[[Scheduler], None] | None = None,
                 tool_executor: str | None = None) -> RunResult:
    """Continue an interrupted run (same run id) from its events.

    :param hooks: listeners of the run's events, as :meth:`Workflow.run
        <orchestrator.sdk.Workflow.run>` takes them (an async function is awaited).
    :param backend: override every model's backend; default: the override the run was
        started (or last resumed) with, if any.
    :param tool_executor: run the tool steps on this executor (``ponder resume
        --tool-executor``); default: the one the run was started (or last resumed) with,
        if any (a trace written before Ponder recorded it: the registry's ``tool``).
    :param children: where the child runs of the run's steps are recorded (see
        :func:`recorded_children`): a step whose sub-workflow was in flight continues
        that child run. Without it such a step starts a new child run; what the one it
        abandons had spent still counts in the run's usage (and in the cut attempt's
        ``step_cancelled``), read from the trace store of a
        :class:`~orchestrator.store.StoreHook` among ``hooks`` (without one, it is not
        known).
    :param on_scheduler: called with the run's scheduler before it starts, as by
        :meth:`Workflow.run <orchestrator.sdk.Workflow.run>`: its ``cancel()`` cancels
        the run, which is recorded as cancelled and returns its result (``ponder resume``
        stops so on Ctrl-C).
    :raises RunAlreadyFinished: when the run succeeded or failed already.
    :raises RunStillRunning: when the process writing the run is alive on this host
        (two writers would run its steps twice and fight over its events); its
        :class:`RunBeingResumed` when another process began resuming the run at the same
        time (its events were stored first; nothing of this one is); its
        :class:`SubRunStillRunning` when another process resumes a sub-workflow's run that
        the run would go on with (``children`` given): found before anything is recorded,
        or, where that process began meanwhile, as the run goes on, which then stops
        there, neither it nor the step recorded as failed (it stays interrupted).
    :raises ConfigError: for a ``backend`` that is not installed, or a hook that is not
        callable, before anything is recorded (as :meth:`Workflow.run
        <orchestrator.sdk.Workflow.run>` refuses them); for a tool executor (given or
        recorded) that is not installed or does not load; for models of the steps yet to
        run whose configs lack what their backend needs here (see
        :func:`~orchestrator.runtime.run_checks.check_model_configs`).
    """
    rec = recording_from_events(events)
    if rec.status in ("succeeded", "failed"):
        raise RunAlreadyFinished(rec.run_id, rec.status)
    if _superseded(rec):
        raise RunSuperseded(rec.run_id, rec.finished.superseded_by, rec.finished.error or "")
    _check_writer_gone(rec)
    reg = registry or Registry.default()
    check_backend(backend, reg)  # one given (the recorded one is not checked: it ran)
    if tool_executor is not None:
        check_tool_executor(tool_executor, reg)
    elif rec.tool_executor is not None:
        check_tool_executor(rec.tool_executor, reg, "the run's recorded tool_executor")
    listeners = _listeners(hooks)
    graph = _graph_for(rec, reg, None, prefer_file=False)
    replayed = await _replayed_recording(rec, children)
    # the models of what has yet to run (an added step's too), as the resumed run serves
    # them; a step on a branch not taken (skipped with no cause) is skipped again: its
    # branch's output is replayed; a replay runs none
    not_taken = {e.step_id for e in events
                 if e.kind == "step_skipped" and getattr(e, "cause_step", None) is None}
    if replayed is None:
        check_model_configs(graph.spec, graph.base_dir, backend if backend is not None
                            else rec.backend, reg,
                            steps=set(graph.nodes) - set(rec.succeeded) - not_taken,
                            more_aliases=aliases_used(
                                [s for s in _added_steps(rec) if s.id not in not_taken], reg))
    # each child run's events are read once for what is done before the run goes on
    runs = _OnceChildren(children) if children is not None else _store_children(listeners)
    going_on = runs if children is not None else None
    if going_on is not None:
        await _check_children_gone(rec, going_on, rec.run_id)
        await _count_failed_children(rec, going_on)
    elif runs is not None:
        # its steps start new child runs: what the ones they had in flight spent is spent
        await _count_failed_children(rec, runs, going_on=False)
    if runs is not None:
        await _count_child_time(rec, runs)
    store = _hook_store(listeners)
    if going_on is None and runs is not None and store is not None:
        # counted: the child runs in flight that the steps start anew will not go on
        await _abandon_children(rec, runs, store)
    later = going_on.anew() if going_on is not None else None  # read as the run goes on
    try:
        return await execute(graph, rec.inputs, registry=reg, hooks=listeners,
                             backend=backend if backend is not None else rec.backend,
                             run_id=rec.run_id, parent=rec.parent,
                             parent_attempt=rec.parent_attempt, preset=Known(rec),
                             attempts=rec.attempts, first_seq=rec.next_seq, source=rec.source,
                             prior_usage=rec.spent, prior_s=rec.live_s,
                             recorded=_RecordedChildren(rec, later), prior_events=events,
                             retry_due=rec.retry_due, left_open=rec.left_open,
                             on_scheduler=on_scheduler,
                             executor_override=None if replayed is None
                             else _replay_executors(replayed, reg),
                             tool_executor=tool_executor if tool_executor is not None
                             else rec.tool_executor)
    except EventConflict as exc:
        if exc.run_id != rec.run_id:
            raise
        # its events were written since they were read: by another resume of it, which
        # found it interrupted too
        raise await _being_resumed(rec.run_id, going_on) from None
    except SubRunStillRunning as exc:  # found as it went on (one below, or started since)
        if exc.run_id == rec.run_id:
            raise
        raise SubRunStillRunning(rec.run_id, exc.child_id, exc.pid, exc.host) from None


async def _replayed_recording(rec: Recording, runs: ChildRuns | None) -> Recording | None:
    """For an exact replay (``ponder replay RUN``: its parent is a run, no step of it),
    the recording of the run it replays: a resumed replay goes on serving every step
    from that trace, as it began. (It called the tools and models for real.) ``None``
    for any other run: a fork's trace carries the outputs it took, and the steps it
    runs again run for real.

    :raises PonderError: without ``runs`` to read that run from, or when it is gone.
    """
    if rec.parent is None or rec.parent[1] is not None or rec.parent_attempt is not None:
        return None
    source = rec.parent[0]
    if runs is None:
        raise PonderError(f"run {rec.run_id} replays run {source}: it goes on serving its "
                          "steps from that run's trace, which it needs to read: resume it "
                          "with children=recorded_children(store)")
    try:
        events = await runs.events(source)
    except RunNotFound:
        events = []
    if not events:
        raise PonderError(f"run {rec.run_id} replays run {source}, which is no longer in the "
                          "trace store: it cannot go on (its steps are served from that "
                          f"run's trace); to run the workflow again, `ponder run` it")
    return recording_from_events(events)


def _replay_executors(rec: Recording, reg: Registry) -> dict[str, Executor]:
    """Executors that serve every step of an exact replay of ``rec`` from its trace:
    every kind a step may have, declared or added as the run goes (a map's items, a
    plan's steps; a map of tool steps in a workflow with no tool step of its own ran its
    items' tools and models again), but maps and branches, which the scheduler runs."""
    served = _ReplayExecutor(rec)
    return {k: served for k in set(reg.executors) | set(STEP_KINDS)
            if k not in ("map", "branch")}


async def _being_resumed(run_id: str, runs: _OnceChildren | None) -> RunBeingResumed:
    """The error of a resume of ``run_id`` that another process began at the same time,
    naming that process where its ``run_started`` tells (read again from ``runs``)."""
    writer = None
    if runs is not None:
        try:
            writer = recording_from_events(await runs.anew().events(run_id)).writer
        except PonderError:  # not readable now: the process goes unnamed
            writer = None
    pid, host = getattr(writer, "writer_pid", None), getattr(writer, "writer_host", None)
    if pid == os.getpid():  # read before the other one wrote: not known
        pid = host = None
    return RunBeingResumed(run_id, pid or 0, host or "")


async def _check_children_gone(rec: Recording, runs: ChildRuns, resumed: str) -> None:
    """Check, before the resume of ``resumed`` records anything, that no process writes a
    sub-workflow run that it would go on with (one that a step's attempt in flight when
    ``rec`` stopped ran, and those below it): a ``ponder resume`` of that run going on.
    The step would fail on it, and the run with it, for good.

    :raises SubRunStillRunning: naming that run and process.
    """
    if not rec.unfinished:
        return
    known = await runs.children(rec.run_id)
    for (step_id, attempt), child_id in known.items():
        if rec.unfinished.get(step_id) != attempt:
            continue
        events = await runs.events(child_id)
        child = recording_from_events(events) if events else None
        if child is None or child.writer is None:  # finished: its result is taken
            continue
        try:
            _check_writer_gone(child)
        except RunStillRunning as exc:
            raise SubRunStillRunning(resumed, child_id, exc.pid, exc.host) from None
        await _check_children_gone(child, runs, resumed)


def _stopping(ctx: RunContext, error: SubRunStillRunning) -> SubRunStillRunning:
    """``error``, found as a resumed run of ``ctx`` goes on with a sub-workflow's run,
    made to stop that run as a trace store that cannot write does (its scheduler's
    ``hook_error``): the step is not recorded as failed, nor the run as over, so that the
    run stays interrupted, to be resumed again once the other process is done."""
    if ctx.scheduler is not None:
        ctx.scheduler.hook_error = error
    return error


class _RecordedChildren:
    """The child runs of a resumed run (see :class:`~orchestrator.runtime.engine.
    RecordedChildren`). A step whose attempt was in flight takes the child that attempt
    ran, once (its next attempts start new children). A fan-out that runs again (a spawn
    in flight) names its children after its new attempt (``s@2[0]``): each takes the
    child of the same position of the attempt before (``s[0]``), in flight or succeeded,
    when the inputs are the same."""

    def __init__(self, rec: Recording, runs: _OnceChildren | None) -> None:
        self._rec = rec
        self._runs = runs
        self._taken: set[str] = set()
        self._plans_taken: set[str] = set()
        self._known: dict[tuple[str, int], str] | None = None
        self._lock = anyio.Lock()

    async def run_child(self, ctx: RunContext, graph: CompiledGraph, inputs: dict[str, Any],
                        parent_step_id: str, attempt: int,
                        spawn_depth_limit: int) -> RunResult | None:
        earlier = self._earlier(parent_step_id) if self._runs is not None else None
        if earlier is None or self._runs is None:
            return None
        self._taken.add(earlier[0])
        async with self._lock:
            if self._known is None:
                self._known = await self._runs.children(self._rec.run_id)
        child_id = self._known.get(earlier)
        if child_id is None:
            return None
        events = await self._runs.events(child_id)
        if not events:
            return None
        child = recording_from_events(events)
        if child.status == "failed" or _superseded(child) \
                or not _same_inputs(graph, inputs, child):
            return None
        if child.status == "succeeded":
            return _less_counted(_recorded_result(child, events), self._rec, events)
        # another process resuming the child since the resume began (or one below it):
        # this run stops, not failed (see _stopping)
        try:
            _check_writer_gone(child)
            await _count_failed_children(child, self._runs)
            await _count_child_time(child, self._runs)
            result = await execute(
                _child_graph(graph, child, ctx), inputs, registry=ctx.registry,
                hooks=ctx.hooks, backends=ctx.backends, run_id=child.run_id,
                parent=(ctx.run_id, parent_step_id), parent_attempt=attempt,
                depth=ctx.depth + 1, spawn_depth_limit=spawn_depth_limit,
                preset=Known(child), attempts=child.attempts, first_seq=child.next_seq,
                source=child.source, prior_usage=child.spent, prior_s=child.live_s,
                recorded=_RecordedChildren(child, self._runs.anew()), prior_events=events,
                retry_due=child.retry_due, left_open=child.left_open,
                # its tokens count towards the enclosing runs' budgets, as a new child's do
                nested_in=(ctx.scheduler, parent_step_id) if ctx.scheduler is not None
                else None)
        except RunStillRunning as exc:  # the child's writer, or one below it
            below = exc.child_id if isinstance(exc, SubRunStillRunning) else child.run_id
            raise _stopping(ctx, SubRunStillRunning(ctx.run_id, below, exc.pid,
                                                    exc.host)) from None
        except EventConflict as exc:
            if exc.run_id != child.run_id:
                raise
            busy = await _being_resumed(child.run_id, self._runs)
            raise _stopping(ctx, SubRunStillRunning(ctx.run_id, child.run_id, busy.pid,
                                                    busy.host)) from None
        return _less_counted(result, self._rec, events)

    def added_ids(self, step_id: str) -> set[str]:
        """The ids of the steps that ``step_id`` added in the recording (any attempt): a
        plan step's next attempt must give its steps other ids (each recorded id keeps
        its recorded output)."""
        return {sid for sid, parent in self._rec.added_by.items() if parent == step_id}

    def earlier_plan(self, step_id: str) -> EarlierPlan | None:
        """What the attempt of the plan step ``step_id`` that was in flight recorded, for
        its next attempt (once: a retry after that asks afresh); ``None`` when none was."""
        recorded = self._rec.continued.get(step_id, step_id)  # a plan inside a plan
        attempt = self._rec.unfinished.get(recorded)
        if attempt is None or recorded in self._plans_taken:
            return None
        self._plans_taken.add(recorded)
        calls: dict[str, list[tuple[str, str]]] = {}
        for e in self._rec.plan_calls.get(recorded, ()):
            if e.attempt == attempt:
                calls.setdefault(e.key, []).append((e.text, e.finish_reason))
        return EarlierPlan(recorded, attempt, calls, self._rec)

    def _earlier(self, step_id: str) -> tuple[str, int] | None:
        """The step of the recording whose child ``step_id`` takes, and the attempt
        that ran it; ``None`` when there is none (or it was taken already)."""
        rec = self._rec
        if step_id in rec.continued:  # a plan's action, the same as one it had in flight
            step_id = rec.continued[step_id]
        if step_id in rec.unfinished:
            return None if step_id in self._taken else (step_id, rec.unfinished[step_id])
        before = _same_child_before(step_id, rec)
        if before is None or before in self._taken:
            return None
        if before in rec.unfinished:
            return before, rec.unfinished[before]
        if before in rec.outputs:
            return before, rec.attempts.get(before, 1)
        return None


class EarlierPlan:
    """What the interrupted attempt of a plan step recorded (its attempt number): the
    answers of its planner's and joiner's LLM calls that completed, by the digest of their
    request (:class:`~orchestrator.runtime.events.PlanCall`), and the steps it added with
    their definitions and outputs. Its next attempt takes an answer instead of asking
    again, and an action it adds the same as one that had succeeded takes that output
    (:meth:`reuse`; recorded with ``meta.reused_from``)."""

    def __init__(self, step_id: str, attempt: int, calls: dict[str, list[tuple[str, str]]],
                 rec: Recording) -> None:
        self.step_id = step_id
        self.attempt = attempt
        self._calls = calls  # digest -> (answer, finish reason) of each call, in order
        self._rec = rec

    def answer(self, key: str) -> str | None:
        """The recorded answer to the request of digest ``key``, each taken once (the
        same request made twice had two answers, given in order)."""
        reply = self.reply(key)
        return reply[0] if reply is not None else None

    def reply(self, key: str) -> tuple[str, str] | None:
        """As :meth:`answer`, with why the answer ended: ``stop``, or ``length`` when it
        was cut at max_tokens."""
        answers = self._calls.get(key)
        return answers.pop(0) if answers else None

    def succeeded(self, step_id: str) -> dict[str, Any] | None:
        """The definition of ``step_id`` when this plan step added it and it succeeded."""
        rec = self._rec
        if rec.added_by.get(step_id) != self.step_id or step_id not in rec.outputs:
            return None
        return rec.added_specs.get(step_id)

    def in_flight(self, step_id: str) -> dict[str, Any] | None:
        """The definition of ``step_id`` when this plan step added it and it was in flight
        when the run stopped (a plan, a sub-workflow that may go on)."""
        rec = self._rec
        if rec.added_by.get(step_id) != self.step_id or step_id not in rec.unfinished:
            return None
        return rec.added_specs.get(step_id)

    def ids_before(self) -> set[str]:
        """The ids of the steps this plan step added in its attempts before the cut one
        (the ids that attempt's own id prefix had to avoid)."""
        rec = self._rec
        return {sid for sid, parent in rec.added_by.items()
                if parent == self.step_id and rec.added_in.get(sid, 0) < self.attempt}

    def reuse(self, step_id: str, recorded_id: str) -> None:
        """The step ``step_id``, about to be added, takes the output of ``recorded_id``."""
        self._rec.reused[step_id] = recorded_id

    def go_on(self, step_id: str, recorded_id: str) -> None:
        """The step ``step_id``, about to be added, goes on from ``recorded_id`` (in
        flight): as a plan step, it takes what ``recorded_id`` recorded (its calls, its
        actions); as a sub-workflow, it continues ``recorded_id``'s child run."""
        self._rec.continued[step_id] = recorded_id


class Known(dict[str, Any]):
    """The outputs a resumed run knows from its recording, by step id (what it iterates
    over), that also serve the children of a fan-out that runs again: a fan-out in flight
    (a ``sample``, a ``spawn``, a join's scorers) names its children after its new attempt
    (``s@2[0]``), and each whose child of the same position in the attempt before
    (``s[0]``) had succeeded takes that output instead of running again (the same request:
    its inputs come from the same recorded outputs). The scheduler records it as a
    ``step_succeeded`` with ``meta.reused_from`` (see :meth:`origin`). One whose child of
    before had failed fails again with its recorded error (:meth:`failure`)."""

    def __init__(self, rec: Recording) -> None:
        super().__init__(rec.outputs)
        self._rec = rec

    def origin(self, step_id: str) -> str | None:
        """The recorded step whose output ``step_id`` takes, when that is another step:
        a fan-out's child of the attempt before, or an action of a plan step's attempt
        before (:meth:`EarlierPlan.reuse`)."""
        if dict.__contains__(self, step_id):
            return None
        before = self._rec.reused.get(step_id) or _same_child_before(step_id, self._rec)
        return before if before is not None and dict.__contains__(self, before) else None

    def failure(self, step_id: str) -> Any:
        """The recorded ``step_failed`` that ``step_id`` fails again with, when it is a
        fan-out's child whose namesake of the attempt before had failed (as a step that
        failed fails again on resume): a join sees the failure it saw, and the child is
        not run again. ``None`` for any other step. (A failure its fan-out's retry policy
        retried ended that attempt: the next attempt's children run afresh.)"""
        if dict.__contains__(self, step_id):
            return None
        before = _same_child_before(step_id, self._rec)
        if before is None or before in self._rec.outputs:
            return None
        return self._rec.failed.get(before)

    def __contains__(self, step_id: object) -> bool:
        return dict.__contains__(self, step_id) or (
            isinstance(step_id, str) and self.origin(step_id) is not None)

    def __getitem__(self, step_id: str) -> Any:
        if dict.__contains__(self, step_id):
            return dict.__getitem__(self, step_id)
        before = self.origin(step_id)
        if before is None:
            raise KeyError(step_id)
        return dict.__getitem__(self, before)


def _same_child_before(step_id: str, rec: Recording) -> str | None:
    """For the child ``OWNER@N[K]`` of a fan-out whose attempt was in flight in the
    recording, the id its child ``K`` had in that attempt (``OWNER[K]`` for the first);
    ``None`` for any other step."""
    parts = split_child_id(step_id)
    if parts is None:
        return None
    owner, _, suffix = parts
    was = rec.unfinished.get(owner)
    if was is None:
        return None
    before = child_prefix(owner, was) + suffix
    return before if before != step_id else None


async def _count_failed_children(rec: Recording, runs: ChildRuns, *,
                                  going_on: bool = True) -> None:
    """Count what the sub-workflow runs of the attempts of ``rec`` the run stopped in (its
    process killed while the child ran, or after it ended, before the step's event of it)
    spent where the step's next attempt starts a new child: no event of ``rec`` counted
    them. That is a child that had failed; without ``going_on`` (a resume that goes on
    with no child run: :func:`resume` without ``children``), any child, in flight or
    ended, with what its own abandoned children spent. They go into the run's total
    (``rec.spent``) and the cut attempt's ``step_cancelled`` (``rec.left_open``), as the
    step's attempt would have counted them. (With ``going_on``, a child in flight or
    succeeded is counted by the next attempt, which takes it up.)"""
    if not rec.killed:
        return
    known = await runs.children(rec.run_id)
    for sid, attempt in rec.killed.items():
        child_id = known.get((sid, attempt))
        open_ = rec.left_open.get(sid)
        if child_id is None or open_ is None or open_[0] != attempt:
            continue
        events = await runs.events(child_id)
        child = recording_from_events(events) if events else None
        if child is None or (going_on and (child.status != "failed" or child.finished is None)
                             and not _superseded(child)):
            continue
        if child.finished is not None:
            used = Usage(child.finished.usage.prompt_tokens,
                         child.finished.usage.completion_tokens)
        else:  # in flight when it stopped too: its own children in flight are abandoned
            await _count_failed_children(child, runs, going_on=False)
            used = child.spent
        used = _less(used, _counted_before(rec, events))
        rec.spent += used
        rec.left_open[sid] = (attempt, open_[1] + used, open_[2])


async def _count_child_time(rec: Recording, runs: ChildRuns) -> None:
    """Add to ``rec.live_s`` the time its killed execution is known to have gone on after
    its own last event: the sub-workflow runs its steps in flight ran (and theirs) wrote
    events until then, while its own trace had nothing to say. What ran after the last
    event of every trace is not known, and not counted."""
    rec.live_s += max(0.0, await _alive_until(rec, runs) - rec.last_ts)


async def _alive_until(rec: Recording, runs: ChildRuns) -> float:
    """The last time the run of ``rec`` is known to have worked: its last event's, or,
    where its process was killed (no ``run_finished`` since its last ``run_started``), the
    last event of a sub-workflow run that an attempt in flight then ran, and below."""
    latest = rec.last_ts
    if rec.writer is None or not rec.killed:
        return latest
    known = await runs.children(rec.run_id)
    for sid, attempt in rec.killed.items():
        child_id = known.get((sid, attempt))
        events = await runs.events(child_id) if child_id is not None else []
        if events:
            latest = max(latest, await _alive_until(recording_from_events(events), runs))
    return latest


def _store_children(hooks: Sequence[Any]) -> _OnceChildren | None:
    """The child runs of the trace store a resume records to (its first
    :class:`~orchestrator.store.StoreHook`), where the child runs were recorded too;
    ``None`` when it records to none."""
    store = _hook_store(hooks)
    return _OnceChildren(recorded_children(store)) if store is not None else None


def _hook_store(hooks: Sequence[Any]) -> Any:
    """The trace store of the first :class:`~orchestrator.store.StoreHook` among
    ``hooks``; ``None`` when there is none."""
    from orchestrator.store import StoreHook

    return next((h.store for h in hooks if isinstance(h, StoreHook)), None)


def _superseded(rec: Recording) -> bool:
    """Whether the run of ``rec`` was abandoned by the resume of a run above it."""
    return bool(getattr(rec.finished, "superseded_by", None))


async def _abandon_children(rec: Recording, runs: ChildRuns, store: Any, *,
                            by: str | None = None, why: str | None = None) -> None:
    """Record as over (``run_finished``: cancelled, ``superseded_by`` the resumed run)
    each sub-workflow run in flight or cancelled (not otherwise finished) that an attempt
    of ``rec`` in flight or cancelled ran, and those below it: a resume without
    ``children`` starts a new child run for the step, and that one will never go on.
    Written before the run goes on, so that neither ``ponder runs`` nor a later resume
    takes it for interrupted or cancelled (to be continued).
    A run whose writer is alive (resumed by another process) or written meanwhile is left
    as it is.

    :param by: the run resumed (default: ``rec``'s); ``why``: the reason (default: the
        one of ``rec``'s own children)."""
    if not rec.unfinished:
        return
    by = by or rec.run_id
    known = await runs.children(rec.run_id)
    for (sid, attempt), child_id in sorted(known.items()):
        if rec.unfinished.get(sid) != attempt:
            continue
        events = await runs.events(child_id)
        child = recording_from_events(events) if events else None
        if child is None or (child.finished is not None  # but cancelled (Ctrl-C) with it
                             and (child.status != "cancelled" or _superseded(child))):
            continue
        try:
            _check_writer_gone(child)
        except RunStillRunning:
            continue
        reason = why or (f"superseded: run {by} was resumed without it, and its step "
                         f"{sid!r} runs its sub-workflow again in a new child run")
        # those below it too, counted as read (``runs`` keeps the events it read first)
        # before each is recorded over
        await _count_failed_children(child, runs, going_on=False)
        await _abandon_children(child, runs, store, by=by, why=(
            f"superseded: run {by} was resumed without the sub-workflow run {child_id} "
            "above it, which will not go on"))
        end = ev.RunFinished(run_id=child_id, seq=child.next_seq, ts=time.time(),
                             status="cancelled", error=reason,
                             usage=ev.UsageModel(prompt_tokens=child.spent.prompt_tokens,
                                                 completion_tokens=child.spent.completion_tokens),
                             duration_s=child.live_s, superseded_by=by)
        try:
            await store.append([end], continues=[child_id])
        except EventConflict:  # written meanwhile: going on elsewhere
            continue
        except RunNotFound:  # deleted meanwhile (`ponder gc`): nothing left to end
            continue


def _counted_before(rec: Recording, child_events: Sequence[Any]) -> Usage:
    """The tokens of the child run of ``child_events`` that its parent's trace (``rec``)
    counted already: each attempt of the parent's step that ran this child and was
    cancelled (a run stopped with Ctrl-C) counted what the child had spent by then in its
    ``step_cancelled``. An attempt killed with its process counted nothing."""
    counted = Usage()
    for e in child_events:
        if e.kind == "run_started" and getattr(e, "parent_attempt", None) is not None:
            counted += rec.cancelled_usage.get((e.parent_step_id, e.parent_attempt), Usage())
    return counted


def _less(used: Usage, counted: Usage) -> Usage:
    """``used`` less ``counted``, field by field, never below zero."""
    return Usage(max(0, used.prompt_tokens - counted.prompt_tokens),
                 max(0, used.completion_tokens - counted.completion_tokens))


def _less_counted(result: RunResult, rec: Recording, child_events: Sequence[Any]) -> RunResult:
    """``result`` (a recorded child run that goes on, or its recorded success) with the
    tokens its parent's trace counted already taken off its usage, which the step that
    takes it pays: each attempt of the parent's step that ran this child and was cancelled
    (a run stopped with Ctrl-C) counted what the child had spent by then in its
    ``step_cancelled``; its total counts them again (it counts every execution of it).
    An attempt killed with its process counted nothing: its next one pays all."""
    counted = _counted_before(rec, child_events)
    if counted.total:
        result.usage = _less(result.usage, counted)
    return result


def _same_inputs(graph: CompiledGraph, inputs: dict[str, Any], child: Recording) -> bool:
    """Whether the step gives the recorded child the inputs it ran with (a resumed
    step renders them from the same outputs; anything else is another child)."""
    try:
        given = validate_inputs(graph.spec, inputs)
    except PonderError:  # starting it afresh reports the problem
        return False
    return bool(_comparable(given) == _comparable(child.inputs))


def _child_graph(graph: CompiledGraph, child: Recording, ctx: RunContext) -> CompiledGraph:
    """The workflow the child ran (as top-level resume does, the recorded one), found in
    the folder of the workflow the step names."""
    if not child.spec:
        return graph
    try:
        spec = _as_recorded(child.spec)
    except ValueError:  # an older trace's spec: the workflow as it is now
        return graph
    spec.models.update(_served_bundled(spec, child))
    if spec == graph.spec:
        return graph
    return compile_graph(spec, registry=ctx.registry, base_dir=graph.base_dir,
                         models_given=_aliases_run_bundled(spec))


class _Folded:
    """A recorded run's events, folded when :attr:`RunResult.steps` is read."""

    def __init__(self, events: Sequence[Any]) -> None:
        self._events = events

    def record(self) -> Any:
        from orchestrator.store.fold import fold_events

        return fold_events(self._events)


def _recorded_result(rec: Recording, events: Sequence[Any]) -> RunResult:
    """The result of a run that finished, from its ``run_finished`` event."""
    done = rec.finished
    used = done.usage
    return RunResult(rec.run_id, rec.workflow, done.status, done.output, _Folded(events),
                     Usage(used.prompt_tokens, used.completion_tokens), done.duration_s,
                     done.error)


class _ReplayExecutor:
    """Serves recorded outputs, and a step that failed fails again with its recorded
    error; a step whose rendered input changed fails loudly."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        sid = task.step_id
        failed = self.rec.failed.get(sid)
        if sid not in self.rec.outputs and failed is None:
            why = "it did not succeed in the recorded run" if sid in self.rec.seen else (
                f"the recorded run of {self.rec.workflow!r} has no event of it: the workflow "
                "changed since it was recorded, or is another one")
            raise ReplayMismatch(f"step {sid!r} has no recorded result to replay ({why})",
                                 step_id=sid)
        recorded = self.rec.rendered.get(sid)
        if recorded is not None and recorded != _comparable(task.inputs):
            diff = _first_difference(recorded, _comparable(task.inputs))
            raise ReplayMismatch(
                f"step {sid!r}: the rendered input differs from the recording ({diff}); "
                "the workflow or its inputs changed since the run was recorded", step_id=sid)
        if sid not in self.rec.outputs and failed is not None:  # it fails as it did
            raise RecordedFailure(failed.error, error_type=failed.error_type, step_id=sid,
                                  raw_output=failed.raw)
        # the recorded answers stopped at max_tokens stay so (StepOutcome.cut_short)
        done = self.rec.succeeded.get(sid)
        meta = {k: done.meta[k] for k in _CUT_KEYS if k in done.meta} if done is not None \
            else {}
        return Result(self.rec.outputs[sid], meta={**meta, "replayed_from": self.rec.run_id})

    def estimate_s(self, step: Any, model: ModelConfig | None) -> float:
        return 0.0


#: what a step's recorded ``meta`` says of its answers cut short (max_tokens, the context)
_CUT_KEYS = ("finish_reason", "cut_short", "max_tokens", "stopped_at", "n_ctx")


def _comparable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    text_a, text_b = str(a), str(b)
    if len(text_a) > 60 or len(text_b) > 60:
        i = next((i for i, (x, y) in enumerate(zip(text_a, text_b, strict=False)) if x != y),
                 min(len(text_a), len(text_b)))
        text_a, text_b = text_a[max(0, i - 20):i + 30], text_b[max(0, i - 20):i + 30]
    return f"{path or 'input'}: recorded {text_a!r}, now {text_b!r}"


async def replay(events: Sequence[Any], *, registry: Registry | None = None,
                 hooks: Sequence[AnyHook] = (), workflow_file: str | Path | None = None,
                 from_step: str | None = None, set_outputs: dict[str, Any] | None = None,
                 inputs: dict[str, Any] | None = None, backend: str | None = None,
                 on_scheduler: Callable[[Scheduler], None] | None = None,
                 tool_executor: str | None = None) -> RunResult:
    """Replay a recorded run as a new run linked to it.

    Without ``from_step`` every step is served from the trace. With it, that step and
    everything that depends on it execute for real (``set_outputs`` fixes outputs of
    chosen steps instead), everything else is served from the trace.

    :param hooks: listeners of the run's events, as :meth:`Workflow.run
        <orchestrator.sdk.Workflow.run>` takes them (an async function is awaited).
    :param backend: override every model's backend; default: the override the recorded
        run last ran with, if any.
    :param tool_executor: run the tool steps that run again (``from_step``) on this
        executor (``ponder replay --tool-executor``); default: the one the recorded run
        last ran with, if any, as :func:`resume` does. The new run records it. A replay
        without ``from_step`` runs no tool step: it records one given (checked), and the
        recorded one is neither checked nor carried.
    :param on_scheduler: called with the new run's scheduler before it starts, as by
        :meth:`Workflow.run <orchestrator.sdk.Workflow.run>`: its ``cancel()`` cancels
        the run, which is recorded as cancelled and returns its result (``ponder replay``
        stops so on Ctrl-C).

    :param inputs: inputs to replace recorded ones (with ``from_step``): the steps that
        read them run again.
    :raises PonderError: for an unknown ``from_step``; for ``set_outputs`` or ``inputs``
        without ``from_step`` (a replay without it repeats the recording).
    :raises SpecError: for ``inputs`` the workflow does not take (as
        :func:`~orchestrator.runtime.run_checks.check_inputs` refuses them for a run too),
        before anything is recorded.
    :raises ConfigError: for a ``backend`` that is not installed, or a hook that is not
        callable, before anything is recorded; for a tool executor (given, or recorded
        for a fork) that is not installed or does not load; for a fork, models of the
        steps it runs again whose configs lack what their backend needs here (see
        :func:`~orchestrator.runtime.run_checks.check_model_configs`; a replay without
        ``from_step`` runs no model).
    """
    rec = recording_from_events(events)
    if from_step is None and (set_outputs or inputs):
        given = "set_outputs" if set_outputs else "inputs"
        raise PonderError(f"replay: {given} given without from_step, the step to re-execute "
                          "from (a replay without it serves every step from the recording)")
    reg = registry or Registry.default()
    check_backend(backend, reg)  # one given (the recorded one is not checked: it ran)
    if tool_executor is not None:
        check_tool_executor(tool_executor, reg)
    elif from_step is not None and rec.tool_executor is not None:
        check_tool_executor(rec.tool_executor, reg, "the run's recorded tool_executor")
        tool_executor = rec.tool_executor
    listeners = _listeners(hooks)
    graph = replayed_workflow(rec, registry=reg, workflow_file=workflow_file)
    run_inputs = {**rec.inputs, **_inputs_taken(graph.spec, rec, inputs)} if inputs \
        else dict(rec.inputs)
    backend = backend if backend is not None else rec.backend
    run_id = uuid.uuid4().hex[:16]
    parent = (rec.run_id, from_step)
    if from_step is None:
        return await execute(graph, run_inputs, registry=reg, hooks=listeners, run_id=run_id,
                             parent=parent, executor_override=_replay_executors(rec, reg),
                             backend=backend,
                             source=str(workflow_file or rec.source or "") or None,
                             on_scheduler=on_scheduler, tool_executor=tool_executor)
    if from_step not in graph.nodes:
        owner = _owner(from_step, graph, rec)
        inner = from_step[len(owner) + 1:] if from_step.startswith(owner + ".") else ""
        if inner and _in_sub_workflows(graph, rec, only=owner):
            runs = _store_children(listeners)
            child = (await runs.children(rec.run_id)).get(
                (owner, rec.attempts.get(owner, 1))) if runs is not None else None
            how = (f": fork that run (`ponder replay {child} --from {inner}`), or run "
                   f"{owner!r} again whole (--from {owner})") if child is not None \
                else _in_sub_workflows(graph, rec, only=owner, step=inner)
            raise PonderError(f"cannot fork from {from_step!r}: {inner!r} is a step of the "
                              f"sub-workflow that {owner!r} runs, in a run of its own{how}")
        if owner in graph.nodes and from_step not in rec.added_by:
            raise PonderError(f"cannot fork from {from_step!r}: the recorded run has no such "
                              f"step ({_added_at_run_time(owner, graph, rec)}); a fork starts "
                              f"at a step of the workflow: --from {owner} runs {owner!r} "
                              "again")
        if owner in graph.nodes:
            raise PonderError(
                f"cannot fork from {from_step!r}: it was added at run time by {owner!r}, and "
                "a fork starts at a step of the workflow; fork from "
                f"{owner!r} (--from {owner}): it runs again with every step it adds (with "
                f"--set {from_step}.output=JSON to fix that step's output where "
                f"{owner!r} adds it again)")
        raise PonderError(f"no step {from_step!r} in workflow {graph.spec.name!r}; steps: "
                          + ", ".join(graph.nodes) + _in_sub_workflows(graph, rec))
    sets = set_outputs or {}
    rerun = {from_step} | nx.descendants(graph.dag, from_step)
    changed = {k for k, v in run_inputs.items() if rec.inputs.get(k, _ABSENT) != v}
    if changed:  # what reads a changed input runs again with it
        for sid, node in graph.nodes.items():
            read = _inputs_read(node.step)
            if read is None or read & changed:
                rerun |= {sid} | nx.descendants(graph.dag, sid)
    for sid, value in sets.items():
        _check_set(sid, value, graph, rerun, rec)
        if sid in graph.nodes:  # what depends on a replaced output runs again with it
            rerun |= nx.descendants(graph.dag, sid)
    check_model_configs(graph.spec, graph.base_dir, backend, reg, steps=rerun - set(sets))
    served = {sid: out for sid, out in rec.outputs.items()
              if _owner(sid, graph, rec) not in rerun and sid not in sets}
    # The fork's own trace records every output it uses, so that it can be shown,
    # replayed, resumed and forked again, also once its parent is deleted.
    carried = [(ev.StepSucceeded, _served_fields(rec.succeeded[sid], rec.run_id))
               for sid in sorted(served, key=lambda s: rec.succeeded[s].seq)]
    carried += [(ev.StepSucceeded, {"step_id": sid, "attempt": 0, "output": value,
                                    "meta": {"set_by": "replay --set"}})
                for sid, value in sets.items()]
    return await execute(graph, run_inputs, registry=reg, hooks=listeners, run_id=run_id,
                         parent=parent, preset={**served, **sets}, backend=backend,
                         source=str(workflow_file or rec.source or "") or None,
                         carried=carried, on_scheduler=on_scheduler,
                         tool_executor=tool_executor)


def _in_sub_workflows(graph: CompiledGraph, rec: Recording, *, only: str | None = None,
                      step: str = "STEP") -> str:
    """For a fork from a step the workflow does not have, where the workflow runs
    sub-workflows (or where ``only`` does): how to fork a step of one (in its own run,
    which ``ponder show`` names), or to run it again whole; empty otherwise."""
    subs = [sid for sid, node in graph.nodes.items()
            if (only is None or sid == only) and (
                node.kind in ("workflow", "spawn")
                or getattr(getattr(node.step, "step", None), "kind", None) == "workflow")]
    if not subs:
        return ""
    named = " and ".join(map(repr, subs)) if len(subs) < 4 else \
        ", ".join(map(repr, subs[:3])) + ", ..."
    return (f"; a step of a sub-workflow is forked in that sub-workflow's run (`ponder show "
            f"{rec.run_id}` names the run of {named}: `ponder replay CHILD_RUN --from "
            f"{step}`), or run again with the step that runs it (--from {subs[0]})")


def _inputs_taken(spec: WorkflowSpec, rec: Recording, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` (a fork's replacements) as the replayed workflow takes them: text given
    for an input of another type read as JSON, so that ``n="2"`` (``--input n=2``) is the
    recorded ``2``, not a changed input whose steps run again for real. Inputs it does not
    take are refused, as a run of it refuses them: a workflow that declares no inputs
    takes none. (A sub-workflow's run records the inputs its parent passed, also where its
    workflow declares none, which no step can read: only the ones given are named then.)

    :raises SpecError: naming the inputs.
    """
    if not spec.inputs:
        check_inputs(spec, inputs)  # raises: it takes none
    taken = check_inputs(spec, {**rec.inputs, **inputs})
    return {name: taken[name] for name in inputs}


_ABSENT = object()
#: ``inputs.NAME`` / ``inputs['NAME']`` in a template, an expression or a ``${...}``
_INPUT_READ = re.compile(r"\binputs\s*(?:\.\s*([A-Za-z_][\w-]*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
_INPUTS_WORD = re.compile(r"\binputs\b")


def _inputs_read(step: Any) -> set[str] | None:
    """The workflow inputs a step's definition reads (prompts, expressions, ``${...}``
    values, a map's body), found in its text: ``None`` when it uses ``inputs`` whole (or
    in a way not spelled out), as reading them all. Text that only mentions them (a
    prompt saying "inputs.x") counts too: the step runs again, which is safe."""
    names: set[str] = set()
    texts: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, list | tuple):
            for v in value:
                collect(v)

    collect(step.model_dump(mode="json", by_alias=True))
    for text in texts:
        named = list(_INPUT_READ.finditer(text))
        names |= {m.group(1) or m.group(2) for m in named}
        if len(_INPUTS_WORD.findall(text)) > len(named):
            return None
    return names


def _served_fields(succeeded: Any, parent_run_id: str) -> dict[str, Any]:
    """A parent's ``step_succeeded`` as the fork records it: same output, no tokens
    spent (nothing was called), marked as taken from the parent."""
    fields = succeeded.model_dump(exclude={"run_id", "seq", "ts", "kind", "usage"})
    fields["meta"] = {**fields.get("meta", {}), "replayed_from": parent_run_id}
    return dict(fields)


def _check_set(step_id: str, value: Any, graph: CompiledGraph, rerun: set[str],
               rec: Recording) -> None:
    """A ``--set STEP.output=JSON``: STEP must be a step of the workflow (or an item of
    a map that runs again), and the value must satisfy the step's ``output_schema``.

    :raises PonderError: naming the step and what is wrong.
    """
    owner = _owner(step_id, graph, rec)
    if owner not in graph.nodes:
        raise PonderError(f"--set {step_id}.output: no step {step_id!r} in workflow "
                          f"{graph.spec.name!r}; steps: " + ", ".join(graph.nodes))
    node = graph.nodes[owner]
    step = node.step
    if owner != step_id:
        if owner not in rerun:
            raise PonderError(f"--set {step_id}.output: {owner!r} is not re-executed, so "
                              f"its item {step_id!r} is taken from the recording; "
                              f"fork from {owner!r} (--from {owner}) to replace it")
        # a map's item has the map's step spec; other added steps carry no schema here
        step = getattr(step, "step", None) if _is_map_item(step_id, owner, graph) else None
    schema = getattr(step, "output_schema", None)
    if schema is None:
        return
    try:
        problem = schema_problem(value, schema)
    except ConfigError:  # the step reports its schema when it runs
        return
    if problem is not None:
        shown = json.dumps(value, ensure_ascii=False)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise PonderError(f"--set {step_id}.output={shown}: does not match the step's "
                          f"output_schema {problem}")


def _owner(step_id: str, graph: CompiledGraph, rec: Recording) -> str:
    """The workflow step that added ``step_id`` at run time, directly or through steps
    it added (a plan's step, a sample, a map's item); ``step_id`` itself when it is a
    step of the workflow or unknown."""
    seen = {step_id}
    while step_id not in graph.nodes and step_id in rec.added_by:
        step_id = rec.added_by[step_id]
        if step_id in seen:
            break
        seen.add(step_id)
    return _top_level(step_id, graph)


#: the steps a step added at run time that a message names (then how many in all)
_ADDED_SHOWN = 5


def _added_at_run_time(owner: str, graph: CompiledGraph, rec: Recording) -> str:
    """What the recorded run says ``owner`` added at run time (a map's items, a plan's
    steps...): the first few named, and how many."""
    added = [sid for sid, by in rec.added_by.items() if by == owner]
    names = ", ".join(added[:_ADDED_SHOWN]) + (", ..." if len(added) > _ADDED_SHOWN else "")
    n = len(added)
    if graph.nodes[owner].kind == "map":
        return (f"the map {owner!r} had {n} item{'s' if n != 1 else ''}: {names}" if n
                else f"the map {owner!r} had no items")
    return (f"{owner!r} added {n} step{'s' if n != 1 else ''} at run time: {names}" if n
            else f"{owner!r} added no step at run time")


def _is_map_item(step_id: str, owner: str, graph: CompiledGraph) -> bool:
    """Whether ``step_id`` is an item ``owner[i]`` of the map ``owner``."""
    inner = step_id[len(owner) + 1:-1] if step_id.startswith(owner + "[") else ""
    return graph.nodes[owner].kind == "map" and step_id.endswith("]") and inner.isdigit()


def _top_level(step_id: str, graph: CompiledGraph) -> str:
    """The compiled step a dynamic step belongs to (`m[3]` -> `m`)."""
    if step_id in graph.nodes:
        return step_id
    head = step_id.split("[", 1)[0].split(".", 1)[0]
    return head if head in graph.nodes else step_id
