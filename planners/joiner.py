"""The joiner: after a plan's actions have run, decide ``Finish(answer)`` or
``Replan(reason)``.

The joiner is asked for structured output (:data:`JOINER_SCHEMA`); the text forms
``Finish(...)`` / ``Replan(...)`` are accepted too, with the argument running to
the *matching* parenthesis (an answer may hold parentheses of its own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.runtime.contracts import LLMRequest
from planners.base import ActionRecord, PlanSession
from planners.plan import PlanProblem

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
_VERB = re.compile(r"(?:action\s*:\s*)?\b(finish|replan)\b\s*(\()?", re.IGNORECASE)
_OBSERVATION_CHARS = 1500


@dataclass(frozen=True, slots=True)
class Decision:
    """The joiner's verdict."""

    action: Literal["finish", "replan"]
    answer: Any = None
    reason: str | None = None
    raw: str | None = None


def parse_decision(text: str) -> Decision | PlanProblem:
    """Read a joiner answer: a JSON object, else ``Finish(...)`` / ``Replan(...)`` text.

    :returns: the decision, or a ``bad_joiner`` problem naming what came back.
    """
    obj = _first_json_object(text)
    if isinstance(obj, dict):
        action = str(obj.get("action", "")).strip().lower()
        if action == "finish" and "answer" in obj:
            return Decision("finish", obj["answer"], raw=text)
        if action == "replan":
            reason = obj.get("reason") or obj.get("thought") or ""
            return Decision("replan", reason=str(reason), raw=text)
    verb = _verb_match(text)
    if verb is not None:
        name, argument = verb
        if name == "finish":
            return Decision("finish", _answer_value(argument), raw=text)
        return Decision("replan", reason=argument.strip(), raw=text)
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    return PlanProblem("bad_joiner", f"the joiner answered neither Finish(answer) nor "
                                     f"Replan(reason): {shown!r}", raw=text)


def _first_json_object(text: str) -> Any:
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict) and "action" in value:
            return value
    return None


def _verb_match(text: str) -> tuple[str, str] | None:
    """The first ``Finish(...)``/``Replan(...)`` (a bare ``Replan`` too), with its argument."""
    bare: tuple[str, str] | None = None
    for m in _VERB.finditer(text):
        name = m.group(1).lower()
        if m.group(2) is None:
            if name == "replan" and bare is None:
                bare = ("replan", "")
            continue
        return name, _balanced(text, m.end())
    return bare


def _balanced(text: str, start: int) -> str:
    """The text from ``start`` up to the ``)`` matching the one before it.

    Only parentheses count (apostrophes in prose would confuse quote tracking); when
    they never balance, the argument runs to the last ``)`` (or the end).
    """
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
    last = text.rfind(")", start)
    return text[start:last] if last != -1 else text[start:]


def _answer_value(argument: str) -> Any:
    stripped = argument.strip()
    try:
        value = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError):
        return stripped
    return value if isinstance(value, str | int | float | bool) else stripped


def observation_text(record: ActionRecord) -> str:
    """An action's result as the joiner and replanner see it."""
    if record.status == "succeeded":
        value = record.output
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                default=str)
    elif record.status == "running":
        text = "(not finished yet)"
    else:
        text = f"({record.status}: {record.error})"
    return text if len(text) <= _OBSERVATION_CHARS else text[:_OBSERVATION_CHARS] + "..."


def format_actions(records: Sequence[ActionRecord]) -> str:
    """Every action with its thought and result, numbered by label."""
    lines = []
    for r in records:
        if r.thought:
            lines.append(f"Thought: {r.thought}")
        lines.append(f"{r.label}. {r.text}")
        lines.append(f"Observation: {observation_text(r)}")
    return "\n".join(lines)


def joiner_request(goal: str, records: Sequence[ActionRecord], *, last_round: bool,
                   problems: Sequence[PlanProblem] = (), max_tokens: int = 256,
                   temperature: float = 0.0, request_id: str = "") -> LLMRequest:
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
        max_tokens=max_tokens, temperature=temperature,
        json_schema=FINAL_JOINER_SCHEMA if last_round else JOINER_SCHEMA, request_id=request_id)


async def decide(session: PlanSession, model: str, goal: str, records: Sequence[ActionRecord],
                 *, last_round: bool, problems: Sequence[PlanProblem] = (),
                 max_tokens: int = 256, temperature: float = 0.0,
                 request_id: str = "") -> Decision | PlanProblem:
    """Ask the joiner once.

    :raises BackendError: when the backend fails.
    """
    request = joiner_request(goal, records, last_round=last_round, problems=problems,
                             max_tokens=max_tokens, temperature=temperature,
                             request_id=request_id)
    response = await session.complete(model, request)
    return parse_decision(response.text)
