"""The planner contract, and the session through which a planner reaches the run.

A :class:`Planner` receives a :class:`PlanRequest` (the goal, the tools it may call
with their argument schemas, the history of earlier attempts) and *yields* items as
they become known:

- :class:`PlannedStep`: a step for the live graph. The driver adds it while the
  planner goes on (the planner runs in a task of its own), so the scheduler may start
  it while the plan is still being written; :meth:`PlanSession.wait` on a yielded
  step first waits until the graph has it.
- :class:`PlanProblem`: something wrong with the planner's output, recorded as a
  ``plan_error`` event. With ``will_retry=None`` the plan is given up: the planner
  ends its iteration and the driver asks again (``max_plan_repairs``).
- :class:`PlanAnswer`: the plan's final answer (planners without a joiner).

A planner must stop cleanly when it is closed or cancelled early (the driver does
that once a plan is given up).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar

import anyio
from pydantic import BaseModel, ValidationError

from orchestrator.errors import BackendError, backend_errors
from orchestrator.runtime import events as ev
from orchestrator.runtime.contracts import (
    ExecContext,
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Usage,
    approx_prompt_tokens,
    approx_tokens,
)
from orchestrator.spec.kinds_plan import PlanStep
from orchestrator.spec.options import OptionProblem as OptionProblem
from orchestrator.spec.options import option_problems as _option_problems
from orchestrator.spec.options import options_message
from planners.errors import PlannerConfigError
from planners.plan import PlanProblem
from planners.tools import ToolCatalog


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step for the live graph.

    :param step: a step model (``ToolStep``, ``LLMStep``, ``PlanStep``...) whose id is
        already final (:meth:`PlanRequest.step_id`).
    :param label: the planner's own name for it (LLMCompiler: ``"3"``).
    :param text: how prompts show it (``search("Paris")``).
    """

    step: Any
    label: str
    text: str = ""
    thought: str | None = None


@dataclass(frozen=True, slots=True)
class PlanAnswer:
    """The plan's final answer.

    :param from_step: the answer is this step's output (``value`` is unused): once the
        round's steps are done, the driver takes it if every one of them succeeded and it
        is not empty (null, blank text), and otherwise asks the joiner (when the planner
        has one).
    """

    value: Any
    raw: str | None = None
    from_step: str | None = None


PlanItem = PlannedStep | PlanProblem | PlanAnswer


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """A step an earlier plan (or a rejected try) started, with its outcome when known.

    :param status: ``running`` while unknown, else the step's final status.
    """

    label: str
    step_id: str
    text: str
    round: int
    thought: str | None = None
    status: str = "running"
    output: Any = None
    error: str | None = None


@dataclass(frozen=True)
class PlanRequest:
    """What a planner is asked.

    :param goal: the rendered goal.
    :param step: the plan step (model alias, limits, ``options``...).
    :param tools: the allowlist with argument schemas.
    :param id_prefix: prefix of the ids of the steps this plan adds.
    :param history: every action started so far by this plan step (earlier rounds and
        rejected tries), in order; a new plan may refer to them by label.
    :param problems: why the earlier tries of this round were rejected.
    :param replan_reason: the joiner's reason when this round is a replan.
    :param first_id: the number the plan's first action takes (ids continue counting).
    :param round_has_actions: this round already started actions (a repair may then
        just ``join()``).
    """

    goal: str
    step: PlanStep
    tools: ToolCatalog
    id_prefix: str
    history: tuple[ActionRecord, ...] = ()
    problems: tuple[PlanProblem, ...] = ()
    replan_reason: str | None = None
    round: int = 1
    attempt: int = 1
    first_id: int = 1
    round_has_actions: bool = False

    def step_id(self, label: str | int) -> str:
        """The graph id of the step this plan calls ``label``."""
        return f"{self.id_prefix}{label}"


class Planner(Protocol):
    """Writes a plan for a goal, one step at a time (see the module docstring).

    :cvar uses_joiner: after a plan's steps have run, a joiner decides between the
        answer and a replan (LLMCompiler). Without it the planner yields its answer.

    A planner may also set ``handles_failures = True`` (AGoT): it goes on without a
    step of its plan that fails, so that step does not fail the run by itself; the plan
    step failing still does (a planner with a joiner handles its steps' failures so,
    the joiner seeing them). It may set ``uses_tools = False`` (AGoT, static): the
    driver then does not build the tool catalog for it. And it may define a classmethod
    ``option_problems(options) -> list[OptionProblem]``: compiling a workflow (and
    ``ponder validate``) then reports every problem of a plan step's ``options:`` at its
    line, before anything runs (see :func:`option_problems`). A classmethod
    ``models_used(step) -> set[str]`` names the model aliases of the plan step that the
    planner (and its joiner) call: a run checks only those models' configs before it
    starts (static: none); without it, every one the step names is checked.
    """

    uses_joiner: ClassVar[bool]

    def plan(self, request: PlanRequest, session: PlanSession) -> AsyncIterator[PlanItem]:
        """Yield steps, problems and (without a joiner) the answer."""
        ...


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def option_problems(model: type[BaseModel], options: dict[str, Any],
                    planner: str) -> list[OptionProblem]:
    """Every way a plan step's ``options`` fail ``model``, each at its path inside them;
    an unknown key lists the options the user may set (the fields with a description)."""
    return _option_problems(model, options, planner, described_only=True)


def parse_options(model: type[OptionsT], options: dict[str, Any], planner: str) -> OptionsT:
    """A plan step's ``options:`` as ``model`` (at run time; compiling the workflow has
    already reported every problem, see :func:`option_problems`, in the same words).

    :raises PlannerConfigError: with every problem, as compiling words each.
    """
    try:
        return model.model_validate(options)
    except ValidationError:
        raise PlannerConfigError(options_message(option_problems(model, options, planner))
                                 ) from None


#: the parts of the run a plan step uses: the executor context's live-graph methods
LiveGraph = ExecContext


@dataclass(frozen=True, slots=True)
class StepResult:
    """How a step of the plan ended."""

    step_id: str
    status: str
    output: Any
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def _samples(recorded: str, n: int) -> list[str] | None:
    """The texts of a recorded call of ``n`` samples (a JSON list of them), or None when
    the recording holds something else."""
    try:
        texts = json.loads(recorded)
    except ValueError:
        return None
    if (not isinstance(texts, list) or not 1 <= len(texts) <= n
            or not all(isinstance(t, str) for t in texts)):
        return None
    return texts


def attempt_neutral(value: Any, prefix: str) -> str:
    """``value`` as JSON text with the step id prefix of a plan step's attempt
    (``p__a2_``) left out, so that what two attempts made (a planner's request, an
    action's definition) compares equal when it differs only by their steps' ids."""
    text = json.dumps(value, sort_keys=True, default=repr)
    return text.replace(prefix, "\x00") if prefix else text


@dataclass
class PlanSession:
    """A planner's access to the run: LLM calls (usage summed) and waiting on steps.

    Every call is tagged for the engine pool's program-aware scheduling: a request's empty
    ``run_id`` / ``step_id`` / ``priority`` is filled with the run's id, the plan step's id
    and the plan step's priority (as ``llm`` steps do), so a plan's calls count as part
    of their run's program.

    Every completed call is recorded (a ``plan_call`` event: its answer, by a digest of
    the request; a call of several samples, ``n > 1``, records their texts as a JSON
    list), so that the next attempt of a plan step cut mid-way (a resumed run) takes the
    answers its interrupted attempt had (``earlier``) instead of asking again.

    :param step_id: the plan step.
    :param run_id: the run (default: the graph's).
    :param priority: the plan step's priority (its remaining critical path).
    :param attempt: the plan step's attempt.
    :param id_prefix: the prefix of the ids this attempt gives its steps (left out of a
        request's digest: the attempt before named the same steps otherwise).
    :param earlier: what the interrupted attempt before recorded (``reply(key)``: an
        answer and its finish reason), on resume.
    """

    graph: LiveGraph
    step_id: str
    run_id: str = ""
    priority: float = 0.0
    attempt: int = 1
    id_prefix: str = ""
    earlier: Any = None
    #: every call's tokens, the partial work of a failed, cancelled or timed-out one too
    usage: Usage = field(default_factory=Usage)
    llm_calls: int = 0
    #: every completed call's ``request_id``, text, and ``started`` / ``ended`` times (Unix
    #: seconds, as events' ``ts``), in order (the raw plans kept)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    #: yielded steps the driver has not added to the graph yet
    _adding: dict[str, anyio.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = str(getattr(self.graph, "run_id", "") or "")

    def step_announced(self, step_id: str) -> None:
        """The planner yielded this step (called by the driver)."""
        self._adding.setdefault(step_id, anyio.Event())

    def step_added(self, step_id: str) -> None:
        """The driver added (or refused) this step: waiting on it may go on."""
        event = self._adding.pop(step_id, None)
        if event is not None:
            event.set()

    def prefix_key(self, owner: str) -> str:
        """The ``prefix_key`` of calls that share a prompt prefix under the step ``owner``."""
        return f"{self.run_id}/{owner}"

    async def complete(self, model: str, request: LLMRequest, *,
                       timeout_s: float | None = None) -> LLMResponse:
        """One LLM call to completion.

        :param timeout_s: stop the call (at the engine) after this many seconds.
        :raises TimeoutError: when ``timeout_s`` passed first (its partial usage counted).
        :raises BackendError: (or a subclass, or :class:`StepTimeout`) when the backend fails.
        """
        with anyio.fail_after(timeout_s):
            async with aclosing(self.stream(model, request)) as chunks:
                async for chunk in chunks:
                    if chunk.final is not None:
                        return chunk.final
        raise BackendError(f"step {self.step_id!r}: the backend's stream ended without a "
                           "final chunk", step_id=self.step_id)

    def _tagged(self, request: LLMRequest, counted: Usage) -> LLMRequest:
        """``request`` with its empty run/step/priority fields filled, counting into
        ``counted``."""
        return replace(request, run_id=request.run_id or self.run_id,
                       step_id=request.step_id or self.step_id,
                       priority=request.priority or self.priority, usage=counted)

    async def stream(self, model: str, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        """One LLM call, streamed. Close it early (``aclosing``) to stop it at the engine.

        The call's tokens are added to :attr:`usage`: the response's counts when it
        completes, else what the backend counted so far (``LLMRequest.usage``) or, for a
        backend that counts nothing, an estimate from the chunks received.

        :raises BackendError: (or a subclass, or :class:`StepTimeout`) when the backend fails.
        """
        key = self.request_key(model, request)
        final = self._recorded(key, request)
        if final is not None:  # answered in the attempt that was cut: not asked again
            now = time.time()
            self.outputs.append({"request_id": request.request_id, "text": final.text,
                                 "started": now, "ended": now, "reused": True})
            # recorded again (no tokens: they counted once), for a resume of this attempt
            self._record_call(key, request, final)
            yield LLMChunk(final.text)
            yield LLMChunk("", final=final)
            return
        self.llm_calls += 1
        backend = self.graph.backend(model)
        counted = request.usage if request.usage is not None else Usage()
        before = Usage(counted.prompt_tokens, counted.completion_tokens)
        estimate = Usage()
        done = False
        started = time.time()
        try:
            with backend_errors(self.step_id):
                async with aclosing(backend.stream(self._tagged(request, counted))  # type: ignore[type-var]
                                    ) as chunks:
                    async for chunk in chunks:
                        if chunk.final is not None:
                            done = True
                            self.usage += Usage(chunk.final.prompt_tokens,
                                                chunk.final.completion_tokens)
                            self.outputs.append({"request_id": request.request_id,
                                                 "text": chunk.final.text,
                                                 "started": started, "ended": time.time()})
                            self._record_call(key, request, chunk.final)
                        elif chunk.text:
                            if not estimate.prompt_tokens:
                                estimate.prompt_tokens = approx_prompt_tokens(request.messages)
                            estimate.completion_tokens += max(1, approx_tokens(chunk.text))
                        yield chunk
        finally:
            if not done:  # failed, cancelled or closed early: count what was spent
                spent = Usage(counted.prompt_tokens - before.prompt_tokens,
                              counted.completion_tokens - before.completion_tokens)
                self.usage += spent if spent.total else estimate

    def request_key(self, model: str, request: LLMRequest) -> str:
        """The digest a completed call is recorded under: its model, messages, schema and
        stop sequences, and its number of samples when it asks for several (``n > 1``),
        with this attempt's step id prefix left out (the next attempt's steps have ids of
        their own)."""
        parts: list[Any] = [model, request.messages, request.json_schema, request.stop]
        if request.n != 1:  # a call of one sample keeps the digest it always had
            parts.append(request.n)
        text = attempt_neutral(parts, self.id_prefix)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _recorded(self, key: str, request: LLMRequest) -> LLMResponse | None:
        """The response the interrupted attempt before recorded for this request, or
        None: none was recorded (or, for several samples, not as many as asked)."""
        reply = self.earlier.reply(key) if self.earlier is not None and key else None
        if reply is None:
            return None
        # as the call ended: an answer cut at max_tokens is taken as cut, so that the
        # planner words its problem (and its repair request) as the first time
        known, finish_reason = reply
        if request.n == 1:
            return LLMResponse(known, finish_reason=finish_reason, meta={"reused": True})
        texts = _samples(known, request.n)
        if texts is None:
            return None
        return LLMResponse(texts[0], finish_reason=finish_reason, texts=texts,
                           meta={"reused": True})

    def _record_call(self, key: str, request: LLMRequest, final: LLMResponse) -> None:
        record = getattr(self.graph, "record", None)
        if not key or record is None:
            return
        # a call of several samples records them all, as one JSON list (one event: a run
        # killed while it is written keeps all of them or none)
        text = (final.text if request.n == 1
                else json.dumps(final.texts or [final.text], ensure_ascii=False))
        record(ev.PlanCall, step_id=self.step_id, attempt=self.attempt,
               request_id=request.request_id, key=key, text=text,
               usage=ev.UsageModel(prompt_tokens=final.prompt_tokens,
                                   completion_tokens=final.completion_tokens),
               finish_reason=final.finish_reason or "stop")

    async def wait(self, step_ids: Sequence[str]) -> dict[str, StepResult]:
        """Wait until these steps are resolved; how each ended, by id.

        A step the planner has just yielded is first waited for until the graph has it.
        """
        for sid in step_ids:
            event = self._adding.get(sid)
            if event is not None:
                await event.wait()
        outcomes = await self.graph.wait_steps(list(step_ids))
        return {sid: StepResult(sid, o.status, o.output, o.error) for sid, o in outcomes.items()}
