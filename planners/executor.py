"""The executor of ``plan`` steps: drive a planner, grow the live graph, join, replan.

For each round (a replan starts the next one, at most ``max_replans``):

1. ask the planner for a plan; add each step it yields to the live graph at once
   (the scheduler starts it when its references are resolved);
2. a plan the planner gives up (a malformed plan, a timeout...) is recorded as a
   ``plan_error`` event and asked for again with the problem, at most
   ``max_plan_repairs`` times; steps it had started keep running and are shown to
   the next try, whose numbering continues after theirs;
3. wait for every step of the round; with a joiner (LLMCompiler), ask it to finish
   or replan; without one, the planner's own answer is the output.

Nothing a planner produces crashes the run: it ends as the step's output or as a
:class:`~planners.errors.PlanFailed` with the raw planner output, after every step
already started has finished (no result is lost). An attempt that ends otherwise (its
``timeout_s``, a cancellation, a backend error) cancels the steps it added that have not
ended, so that none runs on, or starts, for it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import weakref
from collections.abc import Collection
from contextlib import aclosing
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from orchestrator.graph.compile import step_dependencies
from orchestrator.runtime import events as ev
from orchestrator.runtime.contracts import Result, Task
from orchestrator.spec.kinds_plan import PlanStep
from orchestrator.spec.models import ModelConfig
from planners import joiner
from planners.allowlist import Allowlist, registry_loader
from planners.base import (
    ActionRecord,
    LiveGraph,
    PlanAnswer,
    PlannedStep,
    Planner,
    PlanRequest,
    PlanSession,
    StepResult,
    attempt_neutral,
)
from planners.errors import PlanFailed, PlannerConfigError
from planners.plan import PlanProblem, tries
from planners.tools import ToolCatalog

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_\-]")
SECONDS_PER_TOKEN_ESTIMATE = 0.02


@functools.cache
def _planner_entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="ponder.planners")}


def load_planner(name: str) -> Planner:
    """The planner registered under ``name`` (entry point group ``ponder.planners``).

    :raises PlannerConfigError: for an unknown name or one that does not load.
    """
    ep = _planner_entry_points().get(name)
    if ep is None:
        known = ", ".join(sorted(_planner_entry_points())) or "none installed"
        raise PlannerConfigError(f"unknown planner {name!r}; known planners: {known}")
    try:
        planner: Planner = ep.load()()
    except (ImportError, AttributeError, TypeError) as exc:
        raise PlannerConfigError(f"planner {name!r} does not load: {exc}") from None
    return planner


def id_prefix(step_id: str, attempt: int, taken: Collection[str] = ()) -> str:
    """Prefix of the ids a plan step gives its steps; valid in ``${steps.ID.output}``.

    Another attempt of the same step (a retry) gets other ids: the first attempt's steps
    stay in the graph.

    :param taken: the workflow's own step ids: while one of them starts with the prefix
        (a step the user named ``p__1``), the prefix takes one more ``_``, so that no step
        the plan adds can have that id (the planner was blamed for it, and asked again
        to no avail); on resume, also the ids the step's recorded attempts gave (each keeps
        its recorded output).
    """
    safe = _UNSAFE_ID_CHARS.sub("_", step_id)
    prefix = f"{safe}__" if attempt <= 1 else f"{safe}__a{attempt}_"
    while any(t.startswith(prefix) for t in taken):
        prefix += "_"
    return prefix


class PlanExecutor:
    """Runs ``plan`` steps with the planner they name (see the module docstring).

    ``Result.output`` is the final answer; ``Result.meta`` holds ``planner``,
    ``rounds``, ``replans``, ``actions`` (every step the plan added, with its status),
    ``plan_errors``, ``decisions`` (the joiner's), ``llm_calls`` and ``llm_outputs``
    (every completed planner and joiner answer: the raw plans); ``Result.raw`` is the
    last of them. ``Result.usage`` sums the planner's and the joiner's completed LLM
    calls (the added steps report their own).
    """

    def __init__(self) -> None:
        #: by live run (its context's ``id``, dropped with the context): the ids each plan
        #: step's attempts added to its graph, where they stay when the attempt fails
        self._live_ids: dict[int, dict[str, set[str]]] = {}

    async def execute(self, task: Task, ctx: Any) -> Result:
        """Run one attempt of a ``plan`` step.

        :raises PlanFailed: when repairs or replans run out (raw output kept).
        :raises PlannerConfigError: for an unknown planner, bad options or allowlist.
        :raises BackendError: when the LLM backend fails (retryable ones are retried).
        """
        step: PlanStep = task.step
        planner = load_planner(step.planner)
        catalog = (ToolCatalog.from_registry(ctx.registry, step.tools)
                   if getattr(planner, "uses_tools", True) else ToolCatalog())
        workflow_ids = {s.id for s in getattr(getattr(ctx, "spec", None), "steps", ())}
        earlier = _earlier_attempt(ctx, task.step_id)
        live = self._added_live(ctx, task.step_id)
        # no id the step's earlier attempts gave, in this process (a retry: they are in the
        # graph) or, on resume, in the recording (each keeps its recorded output): a
        # static plan's step "a2_b" was s__a2_b in attempt 1, attempt 2's step "b" too
        taken = workflow_ids | live | _recorded_ids(ctx, task.step_id)
        session = PlanSession(ctx, task.step_id, run_id=task.run_id, priority=task.priority,
                              attempt=task.attempt,
                              id_prefix=id_prefix(task.step_id, task.attempt, taken),
                              earlier=earlier)
        run = _PlanRun(task, ctx, planner, catalog, session, earlier=earlier,
                       ids_before=taken - workflow_ids, added_live=live)
        try:
            return await run.run()
        except BaseException:
            # a failed or cancelled attempt still spent tokens: its step_failed /
            # step_cancelled event shows them (the context keeps them while it unwinds)
            note = getattr(ctx, "note_usage", None)
            if note is not None and session.usage.total:
                note(task.step_id, session.usage)
            raise

    def _added_live(self, ctx: Any, step_id: str) -> set[str]:
        """The ids the attempts of ``step_id`` added to the graph of the run of ``ctx``
        so far (the set the attempt about to run adds its own to)."""
        key = id(ctx)
        steps = self._live_ids.get(key)
        if steps is None:
            steps = self._live_ids[key] = {}
            try:  # forgotten with the run's context (its id may then serve another)
                weakref.finalize(ctx, self._live_ids.pop, key, None)
            except TypeError:  # a context that cannot be referenced weakly: kept for this
                return set()   # attempt only (a retry may then meet its ids in the graph)
        return steps.setdefault(step_id, set())

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        """A rough duration: a plan and a joiner call of ``max_tokens`` each."""
        return float(getattr(step, "max_tokens", 512)) * SECONDS_PER_TOKEN_ESTIMATE * 2


@dataclass(frozen=True, slots=True)
class _Raised:
    """An exception of the planner's task, carried to the driver."""

    error: Exception


@dataclass
class _Started:
    """A step this plan step added."""

    label: str
    step_id: str
    text: str
    round: int
    thought: str | None


@dataclass
class _PlanRun:
    """One attempt of one plan step: its rounds, the steps it started, what it recorded."""

    task: Task
    graph: LiveGraph
    planner: Planner
    catalog: ToolCatalog
    session: PlanSession
    started: list[_Started] = field(default_factory=list)
    outcomes: dict[str, StepResult] = field(default_factory=dict)
    plan_errors: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    #: the plan step's own dependencies (its steps may use them too), computed once
    own_deps: set[str] | None = None
    #: the check of the ``tools:`` allowlist (built on first use: it reads sub-workflows)
    allowlist: Allowlist | None = None
    #: what this step's interrupted attempt recorded (a resumed run): see :meth:`_reuse`
    earlier: Any = None
    #: the steps this attempt added that take their recorded outputs
    reused: set[str] = field(default_factory=set)
    #: the ids the plan step's earlier attempts gave (live and recorded): still taken
    ids_before: set[str] = field(default_factory=set)
    #: where the ids this attempt adds are kept for the attempts after it (live)
    added_live: set[str] = field(default_factory=set)
    #: the ids this attempt handed to the graph (a cancelled add's too), in order
    added: list[str] = field(default_factory=list)

    @property
    def step(self) -> PlanStep:
        return self.task.step  # type: ignore[no-any-return]

    @property
    def goal(self) -> str:
        return str(self.task.inputs.get("goal", ""))

    async def run(self) -> Result:
        try:
            try:
                return await self._rounds()
            except PlanFailed:
                await self._settle()
                raise
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """The attempt ended without an answer (its ``timeout_s`` passed, it was cancelled,
        a planner call failed): stop the steps it added that have not ended, a running one
        at its executor and a waiting one before it starts (each a ``step_cancelled``
        event), so that none goes on, or starts, for an attempt that is over; a retry
        adds steps of its own. The plan step answers for them: a static plan's step
        cancelled so does not fail the run by itself (the plan step failing does).

        Not awaited: it runs while the attempt's task is being cancelled."""
        left = [sid for sid in self.added if sid not in self.outcomes]
        if not left:
            return
        handled = getattr(self.graph, "handled", None)  # the engine's (see add_steps)
        if isinstance(handled, set):
            handled.update(left)
        self.graph.cancel_steps(left)

    async def _rounds(self) -> Result:
        rounds = self.step.max_replans + 1 if self.planner.uses_joiner else 1
        reason: str | None = None
        for round_ in range(1, rounds + 1):
            answer = await self._plan_round(round_, reason)
            await self._settle()
            if answer is not None and answer.from_step is None:
                return self._result(answer.value, round_)
            if answer is not None and answer.from_step is not None:
                direct = self._direct_answer(answer.from_step, round_)
                if direct is not None:
                    return self._result(direct.answer, round_)
            if not self.planner.uses_joiner:
                raise PlanFailed(f"step {self.task.step_id!r}: planner {self.step.planner!r} "
                                 "ended without an answer", step_id=self.task.step_id)
            decision = await self._join(round_, last=round_ == rounds)
            if decision.action == "finish":
                return self._result(decision.answer, round_)
            reason = decision.reason or "(no reason given)"
        raise AssertionError("unreachable: the last round's joiner finishes or fails")

    # -- one round -----------------------------------------------------------------
    async def _plan_round(self, round_: int, reason: str | None) -> PlanAnswer | None:
        problems: list[PlanProblem] = []
        round_start = len(self.started)
        repairs = self.step.max_plan_repairs
        for attempt in range(1, repairs + 2):
            request = PlanRequest(
                goal=self.goal, step=self.step, tools=self.catalog,
                id_prefix=self.session.id_prefix,
                history=self._history(), problems=tuple(problems), replan_reason=reason,
                round=round_, attempt=attempt, first_id=self._next_number(),
                round_has_actions=len(self.started) > round_start)
            answer, rejected = await self._consume(request)
            if rejected is None:
                return answer
            problems.append(rejected)
        last = problems[-1]
        raise PlanFailed(
            f"step {self.task.step_id!r}: the planner's plan was rejected {len(problems)} "
            f"time{'s' if len(problems) > 1 else ''} (max_plan_repairs={repairs}); "
            f"last error: {last}", step_id=self.task.step_id, raw_output=last.raw)

    async def _consume(self, request: PlanRequest) -> tuple[PlanAnswer | None,
                                                             PlanProblem | None]:
        """Run the planner once: add its steps, record its problems, take its answer.

        The planner runs in its own task and hands its items over a stream: reading the
        plan (and so the engine's decoding, for pull-based engines) never waits for the
        graph to take a step.
        """
        answer: PlanAnswer | None = None
        rejected: PlanProblem | None = None
        raised: BaseException | None = None
        send, recv = anyio.create_memory_object_stream[Any](max_buffer_size=math.inf)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, request, send)
            async with recv:
                async for item in recv:
                    if isinstance(item, _Raised):
                        raised = item.error
                        break
                    if isinstance(item, PlannedStep):
                        problem = self._check_step(item)
                        if problem is None:
                            await self._add(item, request.round)
                            continue
                        self.session.step_added(item.step.id)
                        item = problem
                    if isinstance(item, PlanProblem):
                        if item.will_retry is None:
                            rejected = item
                            self._record_problem(item, request.round, request.attempt,
                                                 request.attempt <= self.step.max_plan_repairs)
                            break
                        self._record_problem(item, request.round,
                                             item.attempt or request.attempt,
                                             item.will_retry)
                    elif isinstance(item, PlanAnswer):
                        answer = item
                        break
                    else:
                        raised = PlanFailed(f"step {self.task.step_id!r}: planner "
                                            f"{self.step.planner!r} yielded "
                                            f"{type(item).__name__}, not a step, problem or "
                                            "answer", step_id=self.task.step_id)
                        break
                # the planner is done, or its plan was given up; stop it before the
                # stream closes, so that it never sends into a closed stream
                tg.cancel_scope.cancel()
        if raised is not None:
            raise raised
        return answer, rejected

    async def _produce(self, request: PlanRequest,
                       send: MemoryObjectSendStream[Any]) -> None:
        """Run the planner, passing each item on (errors too: the caller raises them with
        their own type, not wrapped in a task group's exception group)."""
        async with send:
            try:
                async with aclosing(self.planner.plan(request, self.session)  # type: ignore[type-var]
                                    ) as items:
                    async for item in items:
                        if isinstance(item, PlannedStep):
                            self.session.step_announced(getattr(item.step, "id", ""))
                        send.send_nowait(item)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the driver stopped listening: it has what it needs
            except Exception as exc:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    send.send_nowait(_Raised(exc))

    def _check_step(self, item: PlannedStep) -> PlanProblem | None:
        """A step the scheduler cannot take (duplicate id, unknown dependency) is the
        planner's mistake, not the run's: reject it before it reaches the graph."""
        step = item.step
        sid = getattr(step, "id", None)
        if not isinstance(sid, str) or not hasattr(step, "kind"):
            return PlanProblem("bad_step", f"planner yielded {type(step).__name__}, "
                                           "not a step model")
        taken = {s.step_id for s in self.started} | self._workflow_ids()
        if sid in taken or sid in self.ids_before:
            return PlanProblem("bad_id", f"step id {sid!r} is already in the graph")
        if self.own_deps is None:
            self.own_deps = step_dependencies(self.step)
        known = taken | self.own_deps
        missing = sorted(step_dependencies(step) - known)
        if missing:
            return PlanProblem("bad_reference", f"step {sid!r} refers to unknown step"
                                                f"{'s' if len(missing) > 1 else ''} "
                                                f"{', '.join(map(repr, missing))}")
        return self._check_models(sid, step) or self._check_tools(sid, step)

    def _check_models(self, sid: str, step: Any) -> PlanProblem | None:
        """A step may name only the model aliases a workflow's own steps may (as compiling
        it checks them): those of ``models:`` (which ``--model NAME=FILE`` fills), and
        ``default``. Without ``models:`` an undeclared alias ran on the bundled model,
        silently; with it, the step failed when it ran, not as the planner's mistake."""
        declared = getattr(getattr(self.graph, "spec", None), "models", None) or {}
        for where, alias in step_model_aliases(step):
            if alias == "default" or alias in declared:
                continue
            if declared:
                known = ", ".join(sorted({"default", *declared}))
            else:
                known = ("default (the workflow declares no `models:`; declare the alias "
                         f"there, or give it with --model {alias}=FILE)")
            field_ = "" if where == "model" else f" (its {where})"
            return PlanProblem("unknown_model", f"step {sid!r} names unknown model {alias!r}"
                                                f"{field_}; known models: {known}")
        return None

    def _check_tools(self, sid: str, step: Any) -> PlanProblem | None:
        """The plan step's ``tools:`` allowlist holds for every planner and bounds all a
        step would run: its nested steps, nested plans, sub-workflows (see
        :mod:`planners.allowlist`)."""
        if not self.step.tools:
            return None
        if self.allowlist is None:
            self.allowlist = Allowlist(self.step.tools, self.graph.base_dir,
                                       registry_loader(self.graph.registry.workflows))
        return self.allowlist.problem(sid, step)

    def _workflow_ids(self) -> set[str]:
        spec = getattr(self.graph, "spec", None)
        return {s.id for s in getattr(spec, "steps", ())}

    async def _add(self, item: PlannedStep, round_: int) -> None:
        # A joiner sees every action's observation, failures included, and finishes or
        # replans; AGoT goes on without a thought that failed (handles_failures): the
        # plan step answers for its steps (a failed look-up the joiner worked around
        # does not fail the run; the plan step failing does). Otherwise (static) a
        # failed step fails the run as any step does.
        self._reuse(item.step)
        self.added_live.add(item.step.id)  # before: a cancelled add may have added it
        self.added.append(item.step.id)
        handled = self.planner.uses_joiner or getattr(self.planner, "handles_failures", False)
        # cancellable: an attempt that ends without its answer stops them (_abandon)
        await self.graph.add_steps(self.task.step_id, [item.step],
                                   reason=f"{self.step.planner} plan {round_}",
                                   cancellable=True, handled=handled)
        self.started.append(_Started(item.label, item.step.id, item.text, round_,
                                     item.thought))
        self.session.step_added(item.step.id)

    def _reuse(self, step: Any) -> None:
        """On resume: a step the same as one the interrupted attempt had added under the
        same label (its definition, the attempts' id prefixes left out) and that had
        succeeded takes that step's output instead of running again; one that was in
        flight goes on from it (a plan takes its recorded calls and actions, a
        sub-workflow continues its child run)."""
        earlier = self.earlier
        own = self.session.id_prefix
        if earlier is None or not own or not step.id.startswith(own):
            return
        # the recorded plan step: this one, or the one this (nested) plan goes on from
        before = id_prefix(earlier.step_id, earlier.attempt,
                           self._workflow_ids() | earlier.ids_before())
        recorded_id = before + step.id[len(own):]
        spec = earlier.succeeded(recorded_id)
        done = spec is not None
        if spec is None:
            spec = earlier.in_flight(recorded_id)
        if spec is None:
            return
        # the same definition reads the same inputs only if the steps of this plan it
        # refers to took their recorded outputs too (a step run again may answer otherwise)
        mine = {s.step_id for s in self.started}
        if not step_dependencies(step) & mine <= self.reused:
            return
        dumped = step.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        # a nested plan's steps name it too (AGoT's ``graph``): its id differs as well
        if (_neutral(dumped, own, self.task.step_id, earlier.step_id)
                != _neutral(spec, before, earlier.step_id, self.task.step_id)):
            return
        if done:
            earlier.reuse(step.id, recorded_id)
            self.reused.add(step.id)
        else:
            earlier.go_on(step.id, recorded_id)

    def _direct_answer(self, step_id: str, round_: int) -> joiner.Decision | None:
        """Finish with the output of the step a plan named as its answer, when every step
        of the round succeeded and that output is an answer (recorded as the round's
        decision); else None: the joiner then sees the results and decides. An empty
        output (null, blank text) is no answer, as the joiner's ``Finish`` of it is not."""
        outcome = self.outcomes.get(step_id)
        if outcome is None or not outcome.ok or _empty_answer(outcome.output) or not all(
                self.outcomes[s.step_id].ok for s in self.started if s.round == round_):
            return None
        label = next((s.label for s in self.started if s.step_id == step_id), step_id)
        decision = joiner.Decision("finish", outcome.output,
                                   reason=f"the plan named ${label} as its answer")
        self._record_decision(decision, round_, by="plan")
        return decision

    # -- joiner ----------------------------------------------------------------------
    async def _join(self, round_: int, *, last: bool) -> joiner.Decision:
        problems: list[PlanProblem] = []
        repairs = self.step.max_plan_repairs
        model = self.step.joiner_model or self.step.model
        for attempt in range(1, repairs + 2):
            decision = await joiner.decide(
                self.session, model, self.goal, self._history(), last_round=last,
                problems=problems, max_tokens=self.step.max_tokens,
                temperature=self.step.temperature, top_p=self.step.top_p,
                request_id=f"{self.task.step_id}/join{round_}.{attempt}",
                timeout_s=self.step.plan_timeout_s)
            if isinstance(decision, PlanProblem):
                self._record_problem(decision, round_, attempt, attempt <= repairs, "joiner")
                problems.append(decision)
                continue
            self._record_decision(decision, round_)
            if decision.action == "replan" and last:
                raise PlanFailed(
                    f"step {self.task.step_id!r}: the joiner asked for another plan after "
                    f"max_replans={self.step.max_replans} replan"
                    f"{'s' if self.step.max_replans != 1 else ''}: {decision.reason}",
                    step_id=self.task.step_id, raw_output=decision.raw)
            return decision
        raise PlanFailed(f"step {self.task.step_id!r}: the joiner gave no usable answer "
                         f"in {tries(len(problems))} (max_plan_repairs={repairs}); last error: "
                         f"{problems[-1]}",
                         step_id=self.task.step_id, raw_output=problems[-1].raw)

    # -- bookkeeping -----------------------------------------------------------------
    async def _settle(self) -> None:
        """Wait for every step this plan started (its result is part of the plan's)."""
        pending = [s.step_id for s in self.started if s.step_id not in self.outcomes]
        if pending:
            self.outcomes.update(await self.session.wait(pending))

    def _history(self) -> tuple[ActionRecord, ...]:
        out = []
        for s in self.started:
            o = self.outcomes.get(s.step_id)
            out.append(ActionRecord(s.label, s.step_id, s.text, s.round, s.thought,
                                    o.status if o else "running",
                                    o.output if o else None, o.error if o else None))
        return tuple(out)

    def _next_number(self) -> int:
        numbers = [int(s.label) for s in self.started if s.label.isdigit()]
        return max(numbers, default=0) + 1

    def _record_problem(self, problem: PlanProblem, round_: int, attempt: int,
                        will_retry: bool, by: str = "planner") -> None:
        error = {"round": round_, "attempt": attempt, "code": problem.code,
                 "error": str(problem), "line": problem.line, "will_retry": will_retry,
                 "by": by}
        if problem.layer is not None:  # (an AGoT layer's proposal)
            error["layer"] = problem.layer
        self.plan_errors.append(error)
        _record(self.graph, ev.PlanError, step_id=self.task.step_id, round=round_,
                attempt=attempt, code=problem.code, error=str(problem), line=problem.line,
                raw=problem.raw, will_retry=will_retry, by=by, layer=problem.layer)

    def _record_decision(self, decision: joiner.Decision, round_: int,
                         by: str = "joiner") -> None:
        """Record a round's decision: ``by`` the joiner, or the ``plan`` that named its
        answer (``direct_answer``: no joiner was called)."""
        self.decisions.append({"round": round_, "action": decision.action,
                               "answer": decision.answer, "reason": decision.reason,
                               "by": by})
        _record(self.graph, ev.PlanDecision, step_id=self.task.step_id, round=round_,
                action=decision.action, answer=decision.answer, reason=decision.reason,
                raw=decision.raw, by=by)

    def _result(self, answer: Any, rounds: int) -> Result:
        actions = [{"id": s.label, "step_id": s.step_id, "call": s.text, "round": s.round,
                    "thought": s.thought,
                    "status": self.outcomes[s.step_id].status if s.step_id in self.outcomes
                    else "running"} for s in self.started]
        outputs = self.session.outputs
        return Result(
            output=answer, usage=self.session.usage,
            raw=outputs[-1]["text"] if outputs else None,
            meta={"planner": self.step.planner, "rounds": rounds, "replans": rounds - 1,
                  "actions": actions, "plan_errors": self.plan_errors,
                  "decisions": self.decisions, "llm_calls": self.session.llm_calls,
                  "llm_outputs": outputs})


def _empty_answer(value: Any) -> bool:
    """Whether a result is no answer: null or blank text (the joiner's ``Finish`` of such a
    value is a ``bad_joiner`` error, asked again)."""
    return value is None or (isinstance(value, str) and not value.strip())


def step_model_aliases(step: Any) -> list[tuple[str, str]]:
    """Every model alias ``step`` names, with the field that names it: an LLM step's,
    a plan's, spawn's or sample's ``model``, a plan's ``joiner_model``, a map's LLM body's
    ``model``, a join scorer's or check's ``llm`` (the fields a workflow's compile check
    reads; a tool's arguments may hold a ``model`` that is no alias)."""
    kind = getattr(step, "kind", None)
    out: list[tuple[str, str]] = []
    if kind in ("llm", "plan", "spawn", "sample"):
        out.append(("model", step.model))
    if kind == "plan" and step.joiner_model is not None:
        out.append(("joiner_model", step.joiner_model))
    if kind == "map" and step.step.kind == "llm":
        out.append(("step.model", step.step.model))
    if kind == "join":
        for name in ("scorer", "check"):
            scorer = getattr(step, name)
            if scorer is not None and scorer.llm is not None:
                out.append((f"{name}.llm", scorer.llm))
    return out


def _earlier_attempt(ctx: Any, step_id: str) -> Any:
    """What the attempt of ``step_id`` cut by the end of the run recorded, when this is
    its next attempt on resume (see :class:`~orchestrator.runtime.durable.EarlierPlan`)."""
    earlier_plan = getattr(getattr(ctx, "recorded", None), "earlier_plan", None)
    return earlier_plan(step_id) if earlier_plan is not None else None


def _recorded_ids(ctx: Any, step_id: str) -> set[str]:
    """The ids of the steps that ``step_id`` added in the recording of a resumed run."""
    added_ids = getattr(getattr(ctx, "recorded", None), "added_ids", None)
    return set(added_ids(step_id)) if added_ids is not None else set()


def _neutral(spec: Any, prefix: str, step_id: str, other_id: str) -> str:
    """A step definition as text, with the ids its plan step's attempt gives left out,
    and the plan step's own id (``step_id``) too where the other attempt's plan step had
    another (``other_id``: a plan inside a plan goes on under a new id)."""
    text = attempt_neutral(spec, prefix)
    return text.replace(step_id, "\x01") if step_id != other_id else text


def _record(graph: Any, cls: type[ev._Event], **fields: Any) -> None:
    """Queue a typed event of the run (delivered with the scheduler's next batch)."""
    graph.record(cls, **fields)


__all__ = ["PlanExecutor", "id_prefix", "load_planner"]
