"""The joiner: after a plan's actions have run, decide ``Finish(answer)`` or
``Replan(reason)``.

The joiner is asked for structured output (:data:`JOINER_SCHEMA`); the text forms
``Finish(...)`` / ``Replan(...)`` are accepted too, with the argument running to
the *matching* parenthesis (an answer may hold parentheses of its own; a quoted one,
``Finish("It is 5 :) really")``, runs to the ``)`` after its string and is its text;
one whose string or call never closes is a bad answer), and so is a
line that *begins* with the verb: ``Replan``, ``Replan: reason``, ``Finish: answer``
(a verb inside a sentence, as in "No need to replan.", decides nothing).

An answer that is exactly ``$N`` is action N's result, typed; ``$N`` inside a longer
answer is replaced by the result's text (``$$`` is a literal ``$``). An empty answer,
or one naming an action without a result, is a bad answer: recorded and asked again.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from orchestrator.runtime.contracts import LLMRequest
from planners.base import ActionRecord, PlanSession
from planners.plan import (
    PlanProblem,
    PlanRef,
    json_int,
    sub_string_refs,
    timeout_problem,
    truncated_problem,
    unencodable_parts,
    unencodable_text,
    walk_path,
    whole_plan_ref,
)

JOINER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "thought": {"type": "string"},
        "action": {"enum": ["finish", "replan"]},
        "answer": {"type": ["string", "number", "integer", "boolean"]},
        "reason": {"type": "string"},
    },
    "required": ["action"],
    "additionalProperties": False,
}
#: on the last round a replan is impossible: constrained decoders cannot choose it
FINAL_JOINER_SCHEMA: dict[str, Any] = {
    **JOINER_SCHEMA,
    "properties": {**JOINER_SCHEMA["properties"], "action": {"const": "finish"}},
    "required": ["action", "answer"],
}

_SYSTEM = """You check whether the results of a plan answer a question.
Read the question and every action with its result, then decide:
- if the results are enough, finish with the answer;
- if something is missing or failed, ask for a new plan and say what is missing.
Answer with one JSON object: {"thought": "...", "action": "finish", "answer": "..."} \
or {"thought": "...", "action": "replan", "reason": "..."}."""
_LAST_ROUND = ("No new plan is possible any more: you must finish with the best answer "
               "the results allow.")
# `Finish(` anywhere; `Finish (` (a space) only where a line begins with it, not in prose
# ("I won't replan (the data is enough)")
_VERB = re.compile(r"^[ \t>*_`\-]*(?:action\s*:\s*)?(finish|replan)[ \t]*\(|\b(finish|replan)\(",
                   re.IGNORECASE | re.MULTILINE)
# a line that is the verb alone or the verb, a colon and its argument
_LINE_VERB = re.compile(r"^[ \t>*_`\-]*(?:action\s*:\s*)?\**(finish|replan)\**[ \t]*"
                        r"(?::[ \t]*(.*?))?[ \t.*_`]*$", re.IGNORECASE | re.MULTILINE)
_OBSERVATION_CHARS = 1500
_SURROGATE_HALF = re.compile("[\\ud800-\\udfff]")


@dataclass(frozen=True, slots=True)
class Decision:
    """The joiner's verdict."""

    action: Literal["finish", "replan"]
    answer: Any = None
    reason: str | None = None
    raw: str | None = None


def parse_decision(text: str) -> Decision | PlanProblem:
    """Read a joiner answer: a JSON object, else ``Finish(...)`` / ``Replan(...)`` text,
    else a line beginning with ``Finish:`` / ``Replan`` (see the module docstring).

    :returns: the decision, or a ``bad_joiner`` problem naming what came back (an empty
        ``Finish`` answer included).
    """
    obj = _first_json_object(text)
    decision: Decision | None = None
    action = str(obj.get("action", "")).strip().lower() if isinstance(obj, dict) else ""
    if isinstance(obj, dict):
        if action == "finish" and "answer" in obj:
            decision = Decision("finish", obj["answer"], raw=text)
        elif action == "replan":
            reason = obj.get("reason") or obj.get("thought") or ""
            decision = Decision("replan", reason=str(reason), raw=text)
    if decision is None:
        # a BOM and lone-CR line ends (`Thought: ...\rReplan`) read as the plan parsers
        # read them (JSON takes a CR for a space, and strings keep theirs)
        verb = _verb_match(text.removeprefix("\ufeff").replace("\r\n", "\n")
                           .replace("\r", "\n"))
        if verb is not None:
            name, argument = verb
            if isinstance(argument, PlanProblem):
                return replace(argument, raw=text)
            decision = (Decision("finish", _answer_value(_unnamed(argument, "answer")),
                                 raw=text)
                        if name == "finish" else
                        Decision("replan", reason=_reason_text(_unnamed(argument, "reason")),
                                 raw=text))
    if decision is None and action == "finish":  # the JSON finishes, with no "answer"
        return PlanProblem("bad_joiner", "the joiner finished without an answer: "
                                         f"{_shown(text)!r}", raw=text)
    if decision is None:
        return PlanProblem("bad_joiner", "the joiner answered neither Finish(answer) nor "
                                         f"Replan(reason): {_shown(text)!r}", raw=text)
    if decision.action == "finish" and _empty(decision.answer):
        return PlanProblem("bad_joiner", "the joiner finished without an answer: "
                                         f"{_shown(text)!r}", raw=text)
    bad = unencodable_parts(decision.answer)
    if decision.action == "finish" and bad:
        # a JSON escape ("\\ud800", 1e999) the run's output could not hold: `ponder run`
        # failed to print it
        return PlanProblem("bad_joiner", f"the joiner's answer {unencodable_text(bad[0])}",
                           raw=text)
    if decision.reason is not None and unencodable_parts(decision.reason):
        decision = replace(decision, reason=_SURROGATE_HALF.sub("\ufffd", decision.reason))
    return decision


def resolve_answer(decision: Decision, records: Sequence[ActionRecord]
                   ) -> Decision | PlanProblem:
    """The decision with ``$N`` in a ``Finish`` answer replaced by action N's result (an
    answer that is exactly ``$N`` takes the result as it is, typed).

    :returns: a ``bad_joiner`` problem when the answer names an action that has no result.
    """
    answer = decision.answer
    if decision.action != "finish" or not isinstance(answer, str) or "$" not in answer:
        return decision
    by_label = {r.label: r for r in records}
    missing: list[str] = []
    no_part: list[str] = []

    def result(ref: PlanRef) -> Any:
        record = by_label.get(str(ref.id))
        if record is None or record.status != "succeeded":
            missing.append(str(ref.id) if record is None else f"{ref.id} ({record.status})")
            return None
        try:
            return walk_path(record.output, ref.path)
        except LookupError as exc:
            no_part.append(f"{ref!r}: action {ref.id}'s result has no {exc.args[0]!r} "
                           f"({_shown(text_of_value(record.output))})")
            return None

    def text_of(ref: PlanRef) -> str:
        return text_of_value(result(ref))

    whole = whole_plan_ref(answer)
    value = result(whole) if whole is not None else sub_string_refs(answer, text_of)
    if missing:
        return PlanProblem("bad_joiner", f"the answer {_shown(answer)!r} names action"
                                         f"{'s' if len(missing) > 1 else ''} "
                                         f"{', '.join(missing)}, which "
                                         f"{'have' if len(missing) > 1 else 'has'} no result",
                           raw=decision.raw)
    if no_part:
        return PlanProblem("bad_joiner", f"the answer {_shown(answer)!r} names a part of a "
                                         f"result that does not exist: {'; '.join(no_part)}",
                           raw=decision.raw)
    if _empty(value):
        return PlanProblem("bad_joiner", f"the answer {_shown(answer)!r} is empty once its "
                                         "references are resolved", raw=decision.raw)
    return Decision("finish", value, decision.reason, decision.raw)


def text_of_value(value: Any) -> str:
    """A result as text: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)


def _shown(text: str) -> str:
    shown = " ".join(text.split())
    return shown if len(shown) <= 120 else shown[:117] + "..."


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _first_json_object(text: str) -> Any:
    # raw newlines and tabs inside strings too: llama.cpp's grammars let a model write them
    # (an integer too long for int() is its digits: json raised ValueError)
    decoder = json.JSONDecoder(strict=False, parse_int=json_int)
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
            continue
        if isinstance(value, dict) and "action" in value:
            return value
    return None


def _verb_match(text: str) -> tuple[str, str | PlanProblem] | None:
    """The first ``Finish(...)``/``Replan(...)`` with its argument (a ``bad_joiner``
    problem when a quoted argument is not closed); else the first line that begins with
    the verb (``Replan``, ``Replan: reason``, ``Finish: answer``)."""
    m = _VERB.search(text)
    if m is not None:
        name = (m.group(1) or m.group(2)).lower()
        return name, _call_argument(text, m.end(), "answer" if name == "finish" else "reason")
    line = _LINE_VERB.search(text)
    if line is not None:
        return line.group(1).lower(), (line.group(2) or "").strip()
    return None


def _call_argument(text: str, start: int, name: str) -> str | PlanProblem:
    """The argument of the call whose ``(`` ends at ``start``: the text up to the ``)``
    that closes the call.

    An argument that begins with a quote, ``"`` or ``'`` (after its name:
    ``answer="..."``), is a string: the ``)`` is looked for after the string ends (a
    backslash escapes the quote), and a string that never ends, or a call that does not
    close after it, is a ``bad_joiner`` problem. Anywhere else only parentheses count
    (apostrophes in prose would confuse quote tracking), and when they never balance
    the argument runs to the last ``)`` (or the end).
    """
    named = re.compile(rf"\s*(?:{name}\s*[=:]\s*)?", re.IGNORECASE).match(text, start)
    at = named.end() if named is not None else start
    if at < len(text) and text[at] in "\"'":
        end = _string_end(text, at)
        if end is None:
            return PlanProblem("bad_joiner", f"the joiner's {name} opens a string with "
                                             f"{text[at]} and never closes it: "
                                             f"{_shown(text)!r}", raw=text)
        close = _closing_paren(text, end)
        if close is None:
            return PlanProblem("bad_joiner", f"the joiner's {name} is a string without the "
                                             f"`)` that closes the call after it: "
                                             f"{_shown(text)!r}", raw=text)
        return text[start:close]
    close = _closing_paren(text, start)
    if close is None:
        close = text.rfind(")", start)
    return text[start:close] if close != -1 else text[start:]


def _string_end(text: str, start: int) -> int | None:
    """The index after the quote that closes the string opening at ``start`` (a
    backslash escapes the character after it), or ``None`` when it never closes."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == quote:
            return i + 1
        else:
            i += 1
    return None


def _closing_paren(text: str, start: int) -> int | None:
    """The index of the ``)`` that closes a ``(`` opened before ``start``, counting
    parentheses only; ``None`` when they never balance."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _unnamed(argument: str, name: str) -> str:
    """``argument`` without its name when written as a keyword (``Finish(answer="42")``,
    ``Replan(reason: Rome is missing)``): the name was kept in the answer (the run's
    output was ``answer="42"``)."""
    named = re.match(rf"\s*{name}\s*[=:]\s*", argument, re.IGNORECASE)
    return argument[named.end():] if named else argument


def _reason_text(argument: str) -> str:
    """A replan reason: the text of a quoted one (``Replan("Rome is missing")``) without
    its quotes."""
    value = _answer_value(argument)
    return value if isinstance(value, str) else argument.strip()


def _answer_value(argument: str) -> Any:
    """A text argument's value: a quoted string's text (``"..."`` or ``'...'``, escapes
    read), a JSON number or boolean as itself, anything else as written."""
    stripped = argument.strip()
    if stripped[:1] in ("\"", "'") and _string_end(stripped, 0) == len(stripped):
        return _string_text(stripped)
    try:
        value = json.loads(stripped, strict=False, parse_int=json_int)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return stripped
    return value if isinstance(value, str | int | float | bool) else stripped


def _string_text(literal: str) -> str:
    """The text of one quoted string: read as JSON (raw line breaks kept), else as a
    Python literal (``'it\\'s'``, ``"\\x41"``); escapes neither reads are kept as
    written."""
    body = literal[1:-1]
    if literal[0] == "'":  # the same string between double quotes, for JSON
        body = re.sub(r'\\(.)|"', lambda m: ('\\"' if m.group(0) == '"' else
                                             m.group(1) if m.group(1) == "'" else m.group(0)),
                      body, flags=re.DOTALL)
    try:
        value = json.loads(f'"{body}"', strict=False)
    except ValueError:
        pass
    else:
        if isinstance(value, str):
            return value
    try:
        with warnings.catch_warnings():  # an unknown escape (`\\p`) is kept, as Python does
            warnings.simplefilter("ignore")
            value = ast.literal_eval(literal.replace("\r", "\\r").replace("\n", "\\n"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return literal[1:-1]
    return value if isinstance(value, str) else literal[1:-1]


def observation_text(record: ActionRecord, labels: Mapping[str, str] | None = None) -> str:
    """An action's result as the joiner and replanner see it.

    :param labels: step id -> plan label of the plan's actions: an error naming another
        action's step (``dependency 'p__1' did not succeed``, ```${steps.p__1.output.wind}`:
        no `wind` in ...``) names it as the plan does (``$1``, ```$1.wind```), since the
        model never saw the step ids."""
    if record.status == "succeeded":
        value = record.output
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                default=str)
    elif record.status == "running":
        text = "(not finished yet)"
    else:
        error = str(record.error)
        for step_id, label in (labels or {}).items():
            error = error.replace(f"{step_id!r}", f"${label}")
            # a missing part (`${steps.p__1.output.wind}`: no `wind` in ...) as the plan
            # wrote it: `$1.wind`
            pattern = r"`?\$\{steps\." + re.escape(step_id) + r"\.output([^}]*)\}`?"
            error = re.sub(pattern, "`$" + label.replace("\\", "") + r"\1`", error)
        text = f"({record.status}: {error})"
    return text if len(text) <= _OBSERVATION_CHARS else text[:_OBSERVATION_CHARS] + "..."


def format_actions(records: Sequence[ActionRecord]) -> str:
    """Every action with its thought and result, numbered by label."""
    lines = []
    labels = {r.step_id: r.label for r in records}
    for r in records:
        if r.thought:
            lines.append(f"Thought: {r.thought}")
        lines.append(f"{r.label}. {r.text}")
        lines.append(f"Observation: {observation_text(r, labels)}")
    return "\n".join(lines)


def joiner_request(goal: str, records: Sequence[ActionRecord], *, last_round: bool,
                   problems: Sequence[PlanProblem] = (), max_tokens: int = 256,
                   temperature: float = 0.0, top_p: float | None = None,
                   request_id: str = "") -> LLMRequest:
    """The joiner's LLM request (structured output)."""
    user = [f"Question: {goal}", "", "Actions and observations:", format_actions(records)]
    if last_round:
        user += ["", _LAST_ROUND]
    for p in problems:
        user += ["", f"Your previous answer could not be read: {p.message}. "
                     "Answer with the JSON object only."]
    return LLMRequest(
        messages=[{"role": "system", "content": _SYSTEM},
                  {"role": "user", "content": "\n".join(user)}],
        max_tokens=max_tokens, temperature=temperature, top_p=top_p,
        json_schema=FINAL_JOINER_SCHEMA if last_round else JOINER_SCHEMA, request_id=request_id)


async def decide(session: PlanSession, model: str, goal: str, records: Sequence[ActionRecord],
                 *, last_round: bool, problems: Sequence[PlanProblem] = (),
                 max_tokens: int = 256, temperature: float = 0.0, top_p: float | None = None,
                 request_id: str = "", timeout_s: float | None = None) -> Decision | PlanProblem:
    """Ask the joiner once.

    :param timeout_s: the most seconds the call may take (``plan_timeout_s``).
    :returns: the decision (``$N`` in the answer resolved against ``records``), or the
        problem with the answer: unreadable, empty, cut at ``max_tokens`` (``truncated``),
        or late (``timeout``).
    :raises BackendError: when the backend fails.
    """
    request = joiner_request(goal, records, last_round=last_round, problems=problems,
                             max_tokens=max_tokens, temperature=temperature,
                             top_p=top_p, request_id=request_id)
    try:
        response = await session.complete(model, request, timeout_s=timeout_s)
    except TimeoutError:
        return timeout_problem("the joiner", timeout_s)
    decision = parse_decision(response.text)
    if isinstance(decision, PlanProblem):
        if response.finish_reason == "length":
            return truncated_problem("its answer", max_tokens, raw=response.text)
        return decision
    return resolve_answer(decision, records)
