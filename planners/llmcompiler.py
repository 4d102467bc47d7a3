"""The LLMCompiler planner (Kim et al., ICML 2024): a numbered plan of tool calls,
parsed while it streams so that each call starts as soon as its line is complete.

The planner writes one plan per call of :meth:`LLMCompilerPlanner.plan`; the replan
loop and the joiner live in the driver (:mod:`planners.executor`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

import anyio
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from orchestrator.errors import PonderError
from orchestrator.runtime.contracts import LLMChunk, LLMRequest
from orchestrator.runtime.registry import ToolSpec
from orchestrator.spec.models import ToolStep
from orchestrator.spec.refs import parse_ref
from planners.base import (
    OptionProblem,
    PlanAnswer,
    PlannedStep,
    PlanRequest,
    PlanSession,
    option_problems,
    parse_options,
)
from planners.joiner import format_actions
from planners.plan import (
    END_OF_PLAN,
    MAX_ID_DIGITS,
    Action,
    Joined,
    ParsedPlan,
    ParseEvent,
    PlanBuilder,
    PlanProblem,
    PlanRef,
    truncated_problem,
)
from planners.plan_json import JsonPlanParser, plan_schema
from planners.plan_text import TextPlanParser
from planners.tools import ToolCatalog

PlanParser = TextPlanParser | JsonPlanParser
# an object whose "actions" may come after other keys of plain values ("thought": "...");
# possessive, so a long run of spaces in a value is read once (greedy, the same pattern
# backtracks in cubic time: 1,000 spaces took 0.5 s)
_JSON_PLAN = re.compile(r'\{\s*+(?:"[^"\n]*+"\s*+:\s*+(?:"(?:[^"\\\n]|\\.)*+"|[^"{}\[\],\n]*+)'
                        r'\s*+,\s*+)*+"actions"\s*+:')
_TEXT_ACTION = re.compile(r"^[^\S\n]*(?:[-*+][^\S\n]+)?\W{0,2}(?:(?i:action|step)[^\S\n]*)?\d+\W{0,3}"
                          r"[^\S\n]*`?[A-Za-z_][\w\-]*\(", re.MULTILINE)


class LLMCompilerOptions(BaseModel):
    """The ``options:`` of an ``llmcompiler`` plan step."""

    model_config = ConfigDict(extra="forbid")

    stream_dispatch: bool = Field(True, description="Start each action while the plan is "
                                  "still streaming (false: after the whole plan is read).")
    examples: str = Field("", description="Example plans appended to the planner's "
                          "instructions (few-shot).")
    direct_answer: bool = Field(False, description="Let a plan name its answer with "
                                "`join($N)` (JSON: \"answer\": \"$N\"): when every action "
                                "succeeds and action N's result is not empty (null, blank "
                                "text), it is the answer and the joiner is not called; "
                                "otherwise the joiner decides.")

    @classmethod
    def parse(cls, options: dict[str, Any]) -> LLMCompilerOptions:
        """:raises PlannerConfigError: naming a bad option."""
        return parse_options(cls, options, "llmcompiler")


_TEXT_RULES = """Write the plan one action per line, numbered from {first}:
N. tool(arguments)
- Arguments are literals given by position or as name=value: "text", numbers, [lists],
  {{"key": values}}, true, false, null.
- $N (or ${{N}}) is the result of action N. Use it as an argument, inside a list, or
  inside a string, e.g. calc("$1 + $2"). Write a literal $ as $$.
- $N["key"] is a field of action N's result, $N[0] an item of it.
- An action can only use results of actions above it. Actions that do not depend on
  each other run at the same time: do not chain them without need.
- You may write a line "Thought: ..." before an action.
- Use only the tools listed, at most {max_steps} actions.
- End with the line "N. join()" and then {end}.{answer}"""

_JSON_RULES = """Answer with one JSON object: {{"actions": [{{"id": {first}, "tool": "...", \
"args": {{"name": value}}}}, ...]}}
- Number actions from {first}, one by one.
- "$N" (or "${{N}}") is the result of action N: a whole argument "$1", or inside a
  string "$1 + $2". Write a literal $ as $$.
- "$N.key" is a field of action N's result ("${{N.key}}" inside a string).
- An action can only use results of actions listed before it. Actions that do not
  depend on each other run at the same time: do not chain them without need.
- Use only the tools listed, at most {max_steps} actions.{answer}"""
_TEXT_ANSWER = """
- When the result of one action is the whole answer as it is, end with "N. join($M)"
  instead (M: that action): no further step is needed to answer."""
_JSON_ANSWER = """
- When the result of one action is the whole answer as it is, add "answer": "$M"
  (M: that action): no further step is needed to answer."""


class LLMCompilerPlanner:
    """Plans tool calls with ``$N`` references; parses and dispatches while streaming.

    Each problem in the plan (see :class:`planners.plan.PlanBuilder`) ends the plan at
    the line where it shows: the actions before it keep running, the problem is yielded
    and the driver asks for a repaired plan, which sees those actions as history.
    ``plan_timeout_s`` bounds the time one plan may stream.
    """

    uses_joiner: ClassVar[bool] = True

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[OptionProblem]:
        """Every problem of a plan step's ``options:`` (checked when compiling)."""
        return option_problems(LLMCompilerOptions, options, "llmcompiler")

    @classmethod
    def models_used(cls, step: Any) -> set[str]:
        """The plan step's ``model`` (which writes the plan) and its joiner's
        (``joiner_model``, by default ``model``)."""
        return {step.model, step.joiner_model or step.model}

    async def plan(self, request: PlanRequest,
                   session: PlanSession
                   ) -> AsyncGenerator[PlannedStep | PlanProblem | PlanAnswer, None]:
        """Stream one plan; yield each action as a ``tool`` step, or the first problem;
        with ``direct_answer``, a ``join($N)`` ends it with a :class:`PlanAnswer` naming
        action N's step."""
        step = request.step
        options = LLMCompilerOptions.parse(step.options)
        builder = PlanBuilder(
            request.tools, first_id=request.first_id, known_ids=_known_ids(request),
            max_actions=step.max_plan_steps, allow_empty=request.round_has_actions,
            reusable={int(r.label): r.text for r in request.history
                      if r.round == request.round and r.label.isdigit()})
        parser: PlanParser = (JsonPlanParser(builder) if step.format == "json"
                              else TextPlanParser(builder))
        held: list[Action] = []
        answer: int | None = None
        started = 0  # actions of this plan running: dispatched, or an earlier try's reused

        def take(events: list[ParseEvent]) -> PlanProblem | None:
            """Hold the new actions and note the answer; the first problem, if any."""
            nonlocal answer, started
            for event in events:
                if isinstance(event, PlanProblem):
                    return _with_raw(builder.planner_problem(event), parser.raw)
                if isinstance(event, Joined):
                    answer = event.answer
                elif isinstance(event, Action) and event.reused:
                    started += 1
                elif isinstance(event, Action):
                    held.append(event)
            return None

        deadline = (anyio.current_time() + step.plan_timeout_s
                    if step.plan_timeout_s is not None else None)
        truncated = False
        async with aclosing(session.stream(step.model, self.request(request, options))) as chunks:
            while True:
                chunk = await _next_chunk(chunks, deadline, step.plan_timeout_s)
                if chunk is None:
                    break
                if isinstance(chunk, PlanProblem):
                    yield _with_raw(_timed_out(chunk, started), parser.raw)
                    return
                if chunk.final is not None:
                    truncated = chunk.final.finish_reason == "length"
                problem = take(parser.feed(chunk.text))
                if options.stream_dispatch:  # each complete line starts at once
                    for action in held:
                        yield _planned(action, request)
                    started += len(held)
                    held.clear()
                if problem is not None:
                    yield problem
                    return
        problem = take(parser.close())
        if options.stream_dispatch:  # the last line, complete only now, starts as the others
            for action in held:
                yield _planned(action, request)
            held.clear()
        if problem is not None:
            # what only the end shows (no join(), an unclosed call or object) is, in a
            # response cut at max_tokens, the cut itself
            yield (_with_raw(truncated_problem("the plan", step.max_tokens,
                                               line=problem.line), parser.raw)
                   if truncated else problem)
            return
        for action in held:
            yield _planned(action, request)
        if answer is not None and options.direct_answer:
            yield PlanAnswer(None, raw=parser.raw, from_step=request.step_id(answer))

    def request(self, request: PlanRequest, options: LLMCompilerOptions) -> LLMRequest:
        """The planner's LLM request: instructions, tools, history, problems."""
        step = request.step
        rules = _JSON_RULES if step.format == "json" else _TEXT_RULES
        system = ["You are a planner. Break the question into calls of the tools below; "
                  "calls that do not depend on each other run in parallel.",
                  "", "Tools:", request.tools.describe(), "",
                  rules.format(first=request.first_id, max_steps=step.max_plan_steps,
                               end=END_OF_PLAN, answer=(
                                   "" if not options.direct_answer else
                                   _JSON_ANSWER if step.format == "json" else _TEXT_ANSWER))]
        if options.examples:
            system += ["", "Examples:", options.examples.strip()]
        user = [f"Question: {request.goal}"]
        if request.history:
            user += ["", "Actions already run (use their results as $N):",
                     format_actions(request.history)]
        if request.replan_reason is not None:
            user += ["", f"The previous plan was not enough: {request.replan_reason}",
                     "Plan only what is still missing."]
        if request.problems:
            user += ["", "Your previous plan was rejected:"]
            user += [f"- {p}" for p in request.problems]
            user += ["Write the plan again without these errors."]
        user += ["", f"Number new actions from {request.first_id}."]
        return LLMRequest(
            messages=[{"role": "system", "content": "\n".join(system)},
                      {"role": "user", "content": "\n".join(user)}],
            max_tokens=step.max_tokens, temperature=step.temperature, top_p=step.top_p,
            stop=[END_OF_PLAN] if step.format == "text" else None,
            json_schema=(plan_schema(request.tools, first_id=request.first_id,
                                     max_actions=step.max_plan_steps,
                                     answer=options.direct_answer)
                         if step.format == "json" else None),
            request_id=f"{_owner(request)}/plan{request.round}.{request.attempt}")

    @staticmethod
    def parse_document(text: str, *, tools: Sequence[ToolSpec] = (), any_tool: bool = False,
                       fmt: str = "auto", first_id: int = 1) -> dict[str, Any]:
        """Parse a whole plan for ``ponder plan parse``: its DAG, or every error.

        :param tools: the allowed tools; their arguments are checked.
        :param any_tool: accept other tool names too (their arguments unchecked).
        :param fmt: ``text``, ``json`` or ``auto`` (JSON when the text starts with ``{``).
        :param first_id: the number of the plan's first action (a replan's); the actions
            numbered below it are earlier rounds', which the plan may reference.
        :returns: ``{"ok", "format", "actions": [{id, tool, args, deps, line, thought}],
            "errors": [{line, code, message}]}``.
        :raises PonderError: for a ``first_id`` no action can have.
        """
        if len(str(first_id)) > MAX_ID_DIGITS:
            raise PonderError(f"--first-id {first_id}: an action's number has at most "
                              f"{MAX_ID_DIGITS} digits")
        catalog = ToolCatalog(ToolCatalog.of(tools).tools, open=any_tool)
        plan = parse_plan(text, catalog, fmt=fmt, first_id=first_id)
        doc = plan.to_json()
        doc["format"] = _detect(text) if fmt == "auto" else fmt
        return doc


def parse_plan(text: str, tools: ToolCatalog, *, fmt: str = "auto",
               first_id: int = 1) -> ParsedPlan:
    """Parse a complete plan, collecting every problem (never raises on bad input).

    :param first_id: the number of its first action; actions 1 to ``first_id - 1`` are
        taken to be earlier rounds', so ``$N`` of them is a reference to a result.
    """
    builder = PlanBuilder(tools, first_id=first_id, known_ids=range(1, first_id))
    parser: PlanParser = (JsonPlanParser(builder) if (_detect(text) if fmt == "auto" else fmt)
                          == "json" else TextPlanParser(builder))
    result = ParsedPlan()
    for event in [*parser.feed(text), *parser.close()]:
        if isinstance(event, Action):
            result.actions.append(event)
        elif isinstance(event, PlanProblem):
            result.problems.append(event)
            result.problems.extend(h for p, h in builder.hidden if p is event)
        else:
            result.joined = True
            result.answer = event.answer
    # in the order of their lines (a JSON plan's element that is no object is found only
    # once the whole object is read); what has no line (the end of the text) comes last
    result.problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return result


def _owner(request: PlanRequest) -> str:
    return request.id_prefix.rstrip("_")


def _detect(text: str) -> str:
    """``json`` for a JSON plan (maybe after a fence or a line of prose), else ``text``."""
    # a BOM opens no line of prose, and a lone CR ends a line, as the parsers read them
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    stripped = text.lstrip()
    if stripped.startswith("```"):
        stripped = stripped[3:].lstrip().removeprefix("json").lstrip()
    if stripped.startswith("{"):
        return "json"
    json_at = _JSON_PLAN.search(text)
    text_at = _TEXT_ACTION.search(text)
    return "json" if json_at and (text_at is None or json_at.start() < text_at.start()) \
        else "text"


def _known_ids(request: PlanRequest) -> set[int]:
    return {int(r.label) for r in request.history if r.label.isdigit()}


class PlanToolStep(ToolStep):
    """A plan's action as a tool step: it refers to action N's result as
    ``${steps.<id of N>.output}``, and names such a reference as the plan wrote it
    (``$1.area``) when it fails."""

    _labels: dict[str, int] = PrivateAttr(default_factory=dict)

    @classmethod
    def of(cls, action: Action, request: PlanRequest) -> PlanToolStep:
        """The step of ``action``, in the round and try of ``request``."""
        args = action.step_args(lambda n: "${steps." + request.step_id(n) + ".output}")
        step = cls(id=request.step_id(action.id), tool=action.tool, args=args,
                   description=action.thought or "")
        step._labels = {request.step_id(n): n for n in action.deps}
        return step

    def written_reference(self, text: str) -> str:
        """``${steps.<id of N>.output.area}`` as the plan wrote it: ``$N.area``."""
        try:
            ref = parse_ref(text[2:-1] if text.startswith("${") else text)
        except ValueError:
            return text
        label = self._labels.get(ref.name) if ref.root == "steps" else None
        return text if label is None else repr(PlanRef(label, ref.path))


def _planned(action: Action, request: PlanRequest) -> PlannedStep:
    return PlannedStep(PlanToolStep.of(action, request), str(action.id), action.text,
                       action.thought)


def _with_raw(problem: PlanProblem, raw: str) -> PlanProblem:
    return PlanProblem(problem.code, problem.message, problem.line, raw, problem.will_retry)


async def _next_chunk(chunks: AsyncIterator[LLMChunk], deadline: float | None,
                      timeout_s: float | None) -> LLMChunk | PlanProblem | None:
    """The next chunk; None at the end; a ``timeout`` problem past the deadline."""
    try:
        if deadline is None:
            return await chunks.__anext__()
        # the scope ends before the caller yields: no cancel scope spans a `yield`
        with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
            return await chunks.__anext__()
    except StopAsyncIteration:
        return None
    except TimeoutError:
        return PlanProblem("timeout", f"the planner did not finish its plan within "
                                      f"plan_timeout_s={timeout_s:g}s")


def _timed_out(problem: PlanProblem, started: int) -> PlanProblem:
    """The timeout ``problem``, saying what became of the actions the plan had written:
    those started (dispatched while it streamed, or an earlier try's it repeated) keep
    running; without streaming dispatch the others never start. It said "the actions it
    had written keep running" in every case, none written or started included."""
    kept = ("no action of it had started" if not started
            else "the action of it that had started keeps running" if started == 1
            else f"the {started} actions of it that had started keep running")
    return dataclasses.replace(problem, message=f"{problem.message}; {kept}")
