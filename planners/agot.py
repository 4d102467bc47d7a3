"""Adaptive Graph of Thoughts (Pandey et al., 2025), through the live graph.

A *graph* plan step builds a DAG of thoughts layer by layer: for each layer the LLM
proposes up to ``max_nodes_per_layer`` thoughts (JSON), each with parent edges to
earlier thoughts and optionally marked final. Every thought becomes its own ``plan``
step (planner ``agot``, role *thought*) that depends on its ancestors, so the
scheduler runs thoughts in parallel wherever the edges allow. A thought step:

1. below ``max_depth``, asks whether the thought is complex;
2. complex: runs a nested graph (the same algorithm, one layer fewer, depth + 1)
   whose steps are its children in the trace; the nested answer is its answer;
3. simple (or at ``max_depth``): answers directly, with its ancestors' answers as
   context.

The graph ends with the answer of a thought marked final; when ``max_layers`` runs
out without one, a final ``llm`` step that sees every thought's answer is forced.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.kinds_plan import PlanStep
from orchestrator.spec.models import LLMStep
from planners.base import (
    OptionProblem,
    PlanAnswer,
    PlannedStep,
    PlanRequest,
    PlanSession,
    StepResult,
    option_problems,
    parse_options,
)
from planners.errors import PlanFailed
from planners.plan import (
    PlanProblem,
    json_int,
    timeout_problem,
    tries,
    truncated_problem,
    unencodable_parts,
    unencodable_text,
)

Item = PlannedStep | PlanProblem | PlanAnswer

#: the default bound of a thought's (and a layer's strategy's) length, in characters
DEFAULT_MAX_THOUGHT_CHARS = 500
#: the bound of a complexity check's optional ``reason`` (the planner does not read it)
MAX_REASON_CHARS = 200


class ContextThought(BaseModel):
    """An ancestor thought, as a thought step is told about it."""

    model_config = ConfigDict(extra="forbid")

    step_id: str
    label: str
    thought: str


class AGoTOptions(BaseModel):
    """The ``options:`` of an ``agot`` plan step.

    ``max_depth``, ``max_layers``, ``max_nodes_per_layer`` and ``max_thought_chars``
    are the settings; the other fields are written by the planner into the thought
    steps it adds.
    """

    model_config = ConfigDict(extra="forbid")

    max_depth: int = Field(1, ge=0, le=4, description="Nesting depth of expanded thoughts.")
    max_layers: int = Field(3, ge=1, le=10, description="Layers of the top-level graph.")
    max_nodes_per_layer: int = Field(3, ge=1, le=10, description="Thoughts per layer.")
    max_thought_chars: int = Field(
        DEFAULT_MAX_THOUGHT_CHARS, ge=20, le=20_000,
        description="Longest thought (and layer strategy) in characters: the `maxLength` "
                    "of the layer's JSON schema, which a constrained decoder enforces; a "
                    "longer one is a `too_long` plan error, asked again.")
    role: Literal["graph", "thought"] = "graph"
    depth: int = Field(0, ge=0)
    question: str | None = None
    #: the step running the graph this thought belongs to (its calls' ``prefix_key``)
    graph: str | None = None
    context: list[ContextThought] = Field(default_factory=list)

    @classmethod
    def parse(cls, options: dict[str, Any]) -> AGoTOptions:
        """:raises PlannerConfigError: naming a bad option."""
        return parse_options(cls, options, "agot")


# every string is bounded (``maxLength``, set per request for the layer's), or a small
# model under a constrained decoder may write one until max_tokens
LAYER_SCHEMA_BASE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "strategy": {"type": "string", "maxLength": DEFAULT_MAX_THOUGHT_CHARS},
        "thoughts": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "thought": {"type": "string", "minLength": 1,
                                "maxLength": DEFAULT_MAX_THOUGHT_CHARS},
                    "parents": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                    "final": {"type": "boolean"},
                },
                "required": ["thought"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["thoughts"],
    "additionalProperties": False,
}
CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"complex": {"type": "boolean"},
                   "reason": {"type": "string", "maxLength": MAX_REASON_CHARS}},
    "required": ["complex"],
    "additionalProperties": False,
}

_LAYER_SYSTEM = """You solve a question by building a graph of thoughts, layer by layer.
Each thought is one small step of reasoning or a sub-question. A thought may build on
earlier thoughts: list their numbers as "parents". Thoughts of a layer that do not
depend on each other are worked on at the same time.
Mark a thought "final": true when its answer is the answer to the question.
Answer with one JSON object: {"strategy": "...", "thoughts": [{"thought": "...", \
"parents": [1], "final": false}]}"""
_CHECK_SYSTEM = """Decide whether a thought is complex: whether answering it well needs \
several steps of its own. Answer with one JSON object: {"complex": true or false}."""
_ANSWER_SYSTEM = """Answer the thought concisely and precisely, using the answers of the \
thoughts it builds on. Give only the answer."""
_CHECK_ASK = "Is this thought complex?"
_ANSWER_ASK = "Answer this thought."
_FINAL_PROMPT_END = ("Using these thoughts and their answers, give the final answer to the "
                     "question. Give only the answer.")


@dataclass(frozen=True, slots=True)
class ProposedThought:
    text: str
    parents: tuple[int, ...]
    final: bool


@dataclass(frozen=True, slots=True)
class Layer:
    strategy: str
    thoughts: tuple[ProposedThought, ...]


@dataclass
class _Thought:
    number: int
    step_id: str
    text: str
    parents: tuple[int, ...]
    final: bool
    ancestors: list[int] = field(default_factory=list)
    result: StepResult | None = None

    @property
    def label(self) -> str:
        return f"T{self.number}"


class AGoTPlanner:
    """Adaptive Graph of Thoughts; see the module docstring."""

    uses_joiner: ClassVar[bool] = False
    #: a thought that fails (its nested graph too) is left out of the thoughts after it
    #: and of the final answer: it does not fail the run; the graph failing does
    handles_failures: ClassVar[bool] = True
    uses_tools: ClassVar[bool] = False

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[OptionProblem]:
        """Every problem of a plan step's ``options:`` (checked when compiling)."""
        return option_problems(AGoTOptions, options, "agot")

    @classmethod
    def models_used(cls, step: Any) -> set[str]:
        """The plan step's ``model`` (layers, thoughts, the answer); no joiner."""
        return {step.model}

    async def plan(self, request: PlanRequest,
                   session: PlanSession) -> AsyncGenerator[Item, None]:
        """A graph step yields thought steps and the graph's answer; a thought step
        yields its answer (and, when expanded, the nested graph's steps)."""
        options = AGoTOptions.parse(request.step.options)
        if options.role == "thought":
            async for item in self._thought(request, session, options):
                yield item
            return
        question = options.question or request.goal
        async for item in self._graph(request, session, options, question,
                                      options.depth, options.max_layers):
            yield item

    # -- a graph --------------------------------------------------------------------
    async def _graph(self, request: PlanRequest, session: PlanSession, options: AGoTOptions,
                     question: str, depth: int, layers: int) -> AsyncGenerator[Item, None]:
        thoughts: list[_Thought] = []
        strategy = ""
        for layer_no in range(1, layers + 1):
            if len(thoughts) >= request.step.max_plan_steps:
                break  # the graph's thoughts are spent: its final step answers, as below
            layer: Layer | None = None
            async for item in self._propose(request, session, options, question, thoughts,
                                            strategy, layer_no, layers):
                if isinstance(item, Layer):
                    layer = item
                else:
                    yield item
            assert layer is not None
            strategy = layer.strategy or strategy
            new: list[_Thought] = []
            for proposed in layer.thoughts:
                number = len(thoughts) + 1
                thought = _Thought(number, request.step_id(f"t{number}"), proposed.text,
                                   proposed.parents, proposed.final)
                thought.ancestors = _ancestors(thoughts, proposed.parents)
                thoughts.append(thought)
                new.append(thought)
            # a thought is added once its ancestors have ended, those of its own layer too:
            # one that failed is then left out of it (as an earlier layer's is), where its
            # step depending on it (`after`) was skipped with it
            pending = list(new)
            while pending:
                ready = [t for t in pending if _ancestors_ended(thoughts, t)]
                for thought in ready:
                    pending.remove(thought)
                    yield PlannedStep(self._thought_step(request, session, options, question,
                                                         depth, layers, thought, thoughts),
                                      thought.label, thought.text)
                if pending:
                    await _first_ended(session, thoughts, pending)
            results = await session.wait([t.step_id for t in new])
            for t in new:
                t.result = results[t.step_id]
            finals = [t for t in new if t.final and t.result is not None and t.result.ok]
            if finals:
                yield PlanAnswer(finals[-1].result.output if finals[-1].result else None)
                return
        final = self._final_step(request, question, thoughts)
        yield PlannedStep(final, "final", "final answer")
        result = (await session.wait([final.id]))[final.id]
        if not result.ok:
            raise PlanFailed(f"AGoT: the final answer step {final.id!r} {result.status}: "
                             f"{result.error}", step_id=session.step_id)
        yield PlanAnswer(result.output)

    async def _propose(self, request: PlanRequest, session: PlanSession, options: AGoTOptions,
                       question: str, thoughts: Sequence[_Thought], strategy: str,
                       layer_no: int, layers: int) -> AsyncGenerator[Layer | PlanProblem, None]:
        """Ask for one layer, re-asking with the problem (``max_plan_repairs``)."""
        step = request.step
        problems: list[PlanProblem] = []
        repairs = step.max_plan_repairs
        # max_plan_steps bounds the thoughts of one graph, all its layers together
        left = step.max_plan_steps - len(thoughts)
        for attempt in range(1, repairs + 2):
            llm_request = layer_request(question, thoughts, strategy, layer_no, layers,
                                        min(options.max_nodes_per_layer, left), problems,
                                        max_chars=options.max_thought_chars,
                                        max_tokens=step.max_tokens,
                                        temperature=step.temperature, top_p=step.top_p,
                                        request_id=f"{session.step_id}/layer{layer_no}."
                                                   f"{attempt}",
                                        prefix_key=session.prefix_key(session.step_id))
            try:
                response = await session.complete(step.model, llm_request,
                                                  timeout_s=step.plan_timeout_s)
            except TimeoutError:
                problem = replace(timeout_problem(f"the proposal of layer {layer_no}",
                                                  step.plan_timeout_s),
                                  will_retry=attempt <= repairs, attempt=attempt,
                                  layer=layer_no)
                problems.append(problem)
                yield problem
                continue
            parsed = parse_layer(response.text, len(thoughts), options.max_nodes_per_layer,
                                 max_chars=options.max_thought_chars)
            if isinstance(parsed, Layer) and len(parsed.thoughts) > left:
                parsed = PlanProblem(
                    "too_many_steps", f"{len(parsed.thoughts)} thoughts would make "
                    f"{len(thoughts) + len(parsed.thoughts)} in the graph; at most "
                    f"{step.max_plan_steps} (max_plan_steps): {left} more")
            if isinstance(parsed, Layer):
                yield parsed
                return
            if response.finish_reason == "length":
                parsed = truncated_problem("the layer", step.max_tokens)
            problem = PlanProblem(parsed.code, f"layer {layer_no}: {parsed.message}",
                                  raw=response.text, will_retry=attempt <= repairs,
                                  attempt=attempt, layer=layer_no)
            problems.append(problem)
            yield problem
        raise PlanFailed(f"AGoT: layer {layer_no} could not be planned after "
                         f"{tries(len(problems))}: {problems[-1].message}",
                         step_id=session.step_id, raw_output=problems[-1].raw)

    def _thought_step(self, request: PlanRequest, session: PlanSession, options: AGoTOptions,
                      question: str, depth: int, layers: int, thought: _Thought,
                      thoughts: Sequence[_Thought]) -> PlanStep:
        by_number = {t.number: t for t in thoughts}
        # (every ancestor has ended: see _graph)
        usable = [by_number[n] for n in thought.ancestors
                  if (result := by_number[n].result) is not None and result.ok]
        step = request.step
        thought_options = AGoTOptions(
            max_depth=options.max_depth, max_layers=max(1, layers - 1),
            max_nodes_per_layer=options.max_nodes_per_layer,
            max_thought_chars=options.max_thought_chars, role="thought", depth=depth,
            question=question, graph=session.step_id,
            context=[ContextThought(step_id=t.step_id, label=t.label, thought=t.text)
                     for t in usable])
        return PlanStep(
            id=thought.step_id, planner="agot", goal=literal_template(thought.text),
            model=step.model, max_tokens=step.max_tokens, temperature=step.temperature,
            top_p=step.top_p, max_plan_repairs=step.max_plan_repairs,
            plan_timeout_s=step.plan_timeout_s,
            max_plan_steps=step.max_plan_steps,  # a nested graph's bound too
            tools=list(step.tools), options=thought_options.model_dump(mode="json"),
            after=[t.step_id for t in usable], description=f"{thought.label}: {thought.text}")

    def _final_step(self, request: PlanRequest, question: str,
                    thoughts: Sequence[_Thought]) -> LLMStep:
        parts = [literal_template(f"Question: {question}\n\nThoughts and their answers:\n")]
        for t in thoughts:
            if t.result is not None and t.result.ok:
                parts.append(literal_template(f"{t.label}: {t.text}\nAnswer: "))
                parts.append("{{ steps['" + t.step_id + "'].output }}")
                parts.append(literal_template("\n"))
        parts.append(literal_template("\n" + _FINAL_PROMPT_END))
        step = request.step
        return LLMStep(id=request.step_id("final"), prompt="".join(parts), model=step.model,
                       max_tokens=step.max_tokens, temperature=step.temperature,
                       top_p=step.top_p, description="forced final thought: max_layers ran out")

    # -- a thought --------------------------------------------------------------------
    async def _thought(self, request: PlanRequest, session: PlanSession,
                       options: AGoTOptions) -> AsyncGenerator[Item, None]:
        step = request.step
        question = options.question or request.goal
        answers = await session.wait([c.step_id for c in options.context])
        context = [(c, answers[c.step_id].output) for c in options.context]
        prefix_key = session.prefix_key(options.graph or session.step_id)
        if options.depth < options.max_depth:
            check_tokens = min(step.max_tokens, 64)
            try:
                response = await session.complete(step.model, LLMRequest(
                    messages=[{"role": "system", "content": _CHECK_SYSTEM},
                              {"role": "user", "content": _thought_prompt(
                                  question, request.goal, context, _CHECK_ASK)}],
                    max_tokens=check_tokens, temperature=step.temperature,
                    top_p=step.top_p, json_schema=CHECK_SCHEMA,
                    request_id=f"{session.step_id}/check",
                    prefix_key=prefix_key), timeout_s=step.plan_timeout_s)
            except TimeoutError:
                problem = timeout_problem("the complexity check", step.plan_timeout_s)
                yield replace(problem, message=problem.message + "; answering the thought "
                                                                 "directly", will_retry=False)
                complex_ = False
            else:
                complex_, problem_ = parse_check(response.text)
                if problem_ is not None:
                    if response.finish_reason == "length":
                        problem_ = truncated_problem("the complexity check", check_tokens)
                        problem_ = replace(problem_, message=problem_.message
                                           + "; answering the thought directly")
                    yield PlanProblem(problem_.code, problem_.message, raw=response.text,
                                      will_retry=False)
            if complex_:
                nested_question = _nested_question(question, request.goal, context)
                async for item in self._graph(request, session, options, nested_question,
                                              options.depth + 1, options.max_layers):
                    yield item
                return
        try:
            response = await session.complete(step.model, LLMRequest(
                messages=[{"role": "system", "content": _ANSWER_SYSTEM},
                          {"role": "user", "content": _thought_prompt(question, request.goal,
                                                                      context, _ANSWER_ASK)}],
                max_tokens=step.max_tokens, temperature=step.temperature,
                top_p=step.top_p, request_id=f"{session.step_id}/answer", prefix_key=prefix_key),
                timeout_s=step.plan_timeout_s)
        except TimeoutError:
            problem = replace(timeout_problem("the answer", step.plan_timeout_s),
                              will_retry=False)
            yield problem
            raise PlanFailed(f"AGoT: thought {session.step_id!r} got no answer: {problem}",
                             step_id=session.step_id) from None
        yield PlanAnswer(response.text.strip(), raw=response.text)


# -- pure helpers --------------------------------------------------------------------
def literal_template(text: str) -> str:
    """A Jinja2 template that renders exactly ``text`` (model text is never a template).

    ``text`` is one Jinja2 string literal, so `{{`, `{%` and quotes in it are characters.
    Every `$` in it is the escape ``\\u0024``: a template's `${...}` references are
    rewritten (``to_jinja``) before Jinja2 reads it, inside a string literal too, so a
    `${inputs.q}` the model wrote would be rewritten (and a quote in such a reference's
    key would close the literal: the rest of the text was template). Other characters
    stay as they are: Jinja2 reads the ``\\ud83d\\ude00`` that an ASCII-only dump writes
    for an emoji (or a math letter, U+1D465) as two lone surrogates, which no backend can
    encode."""
    if not text:
        return ""
    # ("$" is never part of an escape json.dumps writes, so each one is a character)
    return "{{ " + json.dumps(text, ensure_ascii=False).replace("$", "\\u0024") + " }}"


def layer_request(question: str, thoughts: Sequence[_Thought], strategy: str, layer_no: int,
                  layers: int, max_nodes: int, problems: Sequence[PlanProblem], *,
                  max_tokens: int, temperature: float, top_p: float | None = None,
                  request_id: str = "", prefix_key: str | None = None,
                  max_chars: int = DEFAULT_MAX_THOUGHT_CHARS) -> LLMRequest:
    """The LLM request proposing one layer of thoughts.

    :param max_chars: the longest thought and strategy (the schema's ``maxLength``).
    """
    user = [f"Question: {question}", ""]
    if thoughts:
        user.append("Thoughts so far:")
        for t in thoughts:
            parents = ", ".join(f"T{p}" for p in t.parents)
            user.append(f"T{t.number}: {t.text}" + (f" (builds on {parents})" if parents else ""))
            user.append(f"   Answer: {_answer_text(t.result)}")
        user.append("")
    if strategy:
        user += [f"Strategy so far: {strategy}", ""]
    user.append(f"Layer {layer_no} of {layers}: propose 1 to {max_nodes} new thoughts, "
                f"numbered from T{len(thoughts) + 1}, each at most {max_chars} characters.")
    if layer_no == layers:
        user.append("This is the last layer: propose one thought whose answer is the final "
                    "answer, with \"final\": true.")
    for p in problems:
        user.append(f"Your previous answer was rejected: {p.message}")
    schema = json.loads(json.dumps(LAYER_SCHEMA_BASE))
    schema["properties"]["thoughts"]["maxItems"] = max_nodes
    schema["properties"]["strategy"]["maxLength"] = max_chars
    schema["properties"]["thoughts"]["items"]["properties"]["thought"]["maxLength"] = max_chars
    # only earlier layers' thoughts can be parents here, so that a constrained decoder
    # cannot write a forward edge (the parser also accepts earlier thoughts of the layer);
    # every array is bounded, or a small model may repeat items until max_tokens
    schema["properties"]["thoughts"]["items"]["properties"]["parents"] = (
        {"type": "array", "maxItems": len(thoughts),
         "items": {"type": "integer", "minimum": 1, "maximum": len(thoughts)}}
        if thoughts else {"type": "array", "maxItems": 0})
    return LLMRequest(messages=[{"role": "system", "content": _LAYER_SYSTEM},
                                {"role": "user", "content": "\n".join(user)}],
                      max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                      json_schema=schema,
                      request_id=request_id, prefix_key=prefix_key)


def parse_layer(text: str, existing: int, max_nodes: int, *,
                max_chars: int = DEFAULT_MAX_THOUGHT_CHARS) -> Layer | PlanProblem:
    """Read one layer's JSON; parents must be earlier thoughts (numbers from 1).

    :param existing: how many thoughts the graph has before this layer.
    :param max_chars: the longest thought and strategy (a backend that does not enforce
        the schema's ``maxLength`` may send longer ones: a ``too_long`` problem).
    """
    doc = _json_object(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("thoughts"), list):
        shown = " ".join(text.split())[:80]
        return PlanProblem("bad_thoughts", "expected a JSON object with a \"thoughts\" list, "
                                           f"got {shown!r}")
    items = doc["thoughts"]
    if not items:
        return PlanProblem("bad_thoughts", "the layer has no thoughts")
    if len(items) > max_nodes:
        return PlanProblem("too_many_steps", f"{len(items)} thoughts in one layer; at most "
                                             f"{max_nodes} (max_nodes_per_layer)")
    out = []
    for i, item in enumerate(items):
        number = existing + i + 1
        if isinstance(item, str):
            item = {"thought": item}
        text_ = item.get("thought") if isinstance(item, dict) else None
        if not isinstance(text_, str) or not text_.strip():
            return PlanProblem("bad_thoughts", f"thought T{number} has no text")
        if len(text_) > max_chars:
            return _too_long(f"thought T{number}", text_, max_chars)
        bad = unencodable_parts(text_)
        if bad:  # a JSON escape ("\\ud800") no prompt, trace or terminal can encode
            return PlanProblem("bad_thoughts", f"thought T{number} {unencodable_text(bad[0])}")
        parents = []
        given = item.get("parents") or []
        # one parent written without the list ("parents": 1, "parents": "T1") is meant
        # as that one: iterating it crashed on a number and read "T1" as "T" and "1"
        for p in given if isinstance(given, list) else [given]:
            n = _thought_number(p)
            if n is None or not 1 <= n < number:
                return PlanProblem("bad_reference", f"thought T{number} builds on "
                                   f"{_shown_value(p)}, which is not an earlier thought")
            parents.append(n)
        out.append(ProposedThought(text_.strip(), tuple(dict.fromkeys(parents)),
                                   _is_final(item.get("final", False))))
    strategy = doc.get("strategy")
    if isinstance(strategy, str) and len(strategy) > max_chars:
        return _too_long("the strategy", strategy, max_chars)
    if isinstance(strategy, str) and unencodable_parts(strategy):
        return PlanProblem("bad_thoughts", "the strategy "
                                           f"{unencodable_text(unencodable_parts(strategy)[0])}")
    return Layer(strategy if isinstance(strategy, str) else "", tuple(out))


def _too_long(what: str, text: str, max_chars: int) -> PlanProblem:
    shown = " ".join(text[:60].split())
    return PlanProblem("too_long", f"{what} is {len(text)} characters long, more than "
                                   f"max_thought_chars={max_chars} ({shown!r}...)")


def parse_check(text: str) -> tuple[bool, PlanProblem | None]:
    """Read a complexity check; an unreadable one counts as simple (with a problem).

    The JSON answer (``{"complex": true}``, ``"true"``/``"no"`` as text too) decides; else
    the text: a leading yes/no, a negated "complex" ("not a complex thought", "isn't
    complex") is simple, "complex" is complex, "simple" is simple.
    """
    shown = " ".join(text.split())[:80]
    unreadable = PlanProblem("bad_check", f"unreadable complexity check {shown!r}; "
                                          "answering the thought directly")
    doc = _json_object(text)
    if isinstance(doc, dict) and "complex" in doc:
        flag = _yes_no(doc["complex"])
        if flag is not None:
            return flag, None
        if not isinstance(doc["complex"], str):  # null, 0, a list: no answer in words
            return False, unreadable
        text = doc["complex"]  # words in the field ("not really"): read below
    lowered = " ".join(text.lower().split())
    keyed = _KEYED.search(lowered)
    if keyed is not None:  # JSON a parser refused ({'complex': False}, unclosed)
        return keyed.group(1) in ("yes", "true"), None
    if _KEY.search(lowered):  # the key with a value of no meaning: its name says nothing
        return False, unreadable
    first = _FIRST_WORD.match(lowered)
    if first is not None:
        return first.group(1) in ("yes", "true"), None
    if _NOT_COMPLEX.search(lowered):
        return False, None
    if "complex" in lowered:
        return True, None
    if _SIMPLE.search(lowered):
        return False, None
    return False, unreadable


# `"complex": false`, `'complex': False`, `complex = no` opening the answer: the key and
# its value, in JSON that json refused (Python quotes, cut before its brace closes); in
# prose ("this is complex: no single step does it") the words decide
_KEYED = re.compile(r"""(?:["']complex["']|^\W*complex)\s*[:=]\s*["']?(yes|no|true|false)\b""")
_KEY = re.compile(r"""["']complex["']\s*:""")
_FIRST_WORD = re.compile(r"^\W*(yes|no|true|false)\b")
_NOT_COMPLEX = re.compile(r"\b(?:not|isn'?t|is ?n[o']t|no|never|nor)\b(?:\W+\w+){0,2}?\W+"
                          r"(?:complex|complicated)\b")
_SIMPLE = re.compile(r"\b(?:simple|straightforward|easy|trivial)\b")


def _yes_no(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no"):
        return False
    return None


def _is_final(value: Any) -> bool:
    """A thought's ``final`` flag: ``true``, or ``"true"``/``"yes"`` as text (``"false"``
    was true as any non-empty string is); anything else is not final."""
    return _yes_no(value) is True


def _thought_number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # `1.0`: JSON without a grammar
        return int(value)
    if isinstance(value, str):
        # ASCII digits, as many as a thought number has: int() refused "²" (isdigit) and
        # thousands of digits with ValueError, which failed the step with no plan error
        m = _THOUGHT_NUMBER.fullmatch(value.strip())
        return int(m.group(1)) if m else None
    return None


_THOUGHT_NUMBER = re.compile(r"[Tt]?([0-9]{1,9})")


def _shown_value(value: Any) -> str:
    """A value of the model's JSON for a message, cut when long."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:30] + "..." + shown[-6:]


def _ancestors(thoughts: Sequence[_Thought], parents: Sequence[int]) -> list[int]:
    """Every transitive parent, ascending."""
    by_number = {t.number: t for t in thoughts}
    seen: set[int] = set()
    stack = list(parents)
    while stack:
        n = stack.pop()
        if n in seen or n not in by_number:
            continue
        seen.add(n)
        stack.extend(by_number[n].parents)
    return sorted(seen)


def _ancestors_ended(thoughts: Sequence[_Thought], thought: _Thought) -> bool:
    by_number = {t.number: t for t in thoughts}
    return all(by_number[n].result is not None for n in thought.ancestors)


async def _first_ended(session: PlanSession, thoughts: Sequence[_Thought],
                       pending: Sequence[_Thought]) -> None:
    """Wait until one of the added thoughts that a ``pending`` thought builds on has ended
    (each that has then is given its ``result``), so that a thought is added as soon as
    its own ancestors have ended, not once those of every thought of its layer have."""
    by_number = {t.number: t for t in thoughts}
    waited = {by_number[n].step_id: by_number[n] for t in pending for n in t.ancestors
              if by_number[n].result is None and by_number[n] not in pending}
    ended: dict[str, StepResult] = {}

    async def wait_for(step_id: str, scope: anyio.CancelScope) -> None:
        ended.update(await session.wait([step_id]))
        scope.cancel()

    async with anyio.create_task_group() as tg:
        for step_id in waited:
            tg.start_soon(wait_for, step_id, tg.cancel_scope)
    for step_id, result in ended.items():
        waited[step_id].result = result


def _json_object(text: str) -> Any:
    # (an integer too long for int() is its digits: json raised ValueError, which failed
    # the thought step as "unexpected ValueError" with no plan error and no repair)
    decoder = json.JSONDecoder(parse_int=json_int)
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
            return value
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
            start = text.find("{", start + 1)
    return None


def _answer_text(result: StepResult | None) -> str:
    if result is None:
        return "(not answered)"
    if not result.ok:
        return f"({result.status}: {result.error})"
    value = result.output
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _thought_prompt(question: str, thought: str,
                    context: Sequence[tuple[ContextThought, Any]], ask: str) -> str:
    lines = [f"Question: {question}", ""]
    if context:
        lines.append("Earlier thoughts and their answers:")
        for c, answer in context:
            shown = answer if isinstance(answer, str) else json.dumps(answer, default=str)
            lines += [f"{c.label}: {c.thought}", f"   Answer: {shown}"]
        lines.append("")
    lines += [f"Thought: {thought}", "", ask]
    return "\n".join(lines)


def _nested_question(question: str, thought: str,
                     context: Sequence[tuple[ContextThought, Any]]) -> str:
    lines = [thought]
    if context:
        lines += ["", "Known so far:"]
        for c, answer in context:
            shown = answer if isinstance(answer, str) else json.dumps(answer, default=str)
            lines.append(f"- {c.thought}: {shown}")
    lines += ["", f"(This is one step towards answering: {question})"]
    return "\n".join(lines)
