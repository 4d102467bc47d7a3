"""LLMCompiler plans as data, and the checks every plan goes through. Pure: no I/O.

A plan is a numbered list of tool calls (:class:`Action`) whose arguments may refer
to earlier results (``$N`` / ``${N}``), closed by ``join()``. Both plan formats
(text and JSON) feed their actions to one :class:`PlanBuilder`, which checks ids,
references, the tool allowlist, arguments and the step limit, and turns each problem
into a :class:`PlanProblem` with its line.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from planners.tools import BindError, ToolCatalog

END_OF_PLAN = "<END_OF_PLAN>"

# a path into a result: `.field`, `[0]`, `['key']` or `["key"]` (keys without brackets,
# braces or the other quote: a step reference holds the path inside `${...}`)
_PATH = (r"(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*-?\d{1,9}\s*\]|\[\s*'[^'\[\]{}]*'\s*\]"
         r"|\[\s*\"[^\"\[\]{}]*\"\s*\])")
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(-?\d+)\s*\]|\[\s*'([^']*)'\s*\]"
                      r"|\[\s*\"([^\"]*)\"\s*\]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = r"(?:\[\s*-?\d{1,9}\s*\]|\[\s*'[^'\[\]{}]*'\s*\]|\[\s*\"[^\"\[\]{}]*\"\s*\])"
# `${3}`, `${3.field}`, `${3[0]}`, `$3` or `$3["key"]` (a `.field` needs the braces in a
# string: "costs $1.50"); a `$` followed by more digits is one number (`$12` is action
# 12); `$$` is a literal `$` (matched first, so `$$3` is the text `$3`)
_STRING_REF = re.compile(r"\$\$|\$\{\s*(\d+)\s*(" + _PATH + r"*)\s*\}|\$(\d+)(?!\d)(" + _INDEX
                         + r"*)")
# what is left of `${` once references and escapes are read: a step would take it for a
# workflow reference (`${steps.x.output}`), which plans cannot write
_BAD_BRACE = re.compile(r"\$\{[^}]*\}?")
# a string that is exactly one reference, maybe with a path (`$1`, `${1}`, `$1.temp`,
# `${1[0]}`; spaces around it allowed): the result, typed
_WHOLE_REF = re.compile(r"\s*\$(?:\{\s*(\d{1,9})\s*(" + _PATH + r"*)\s*\}|(\d{1,9})(" + _PATH
                        + r"*))\s*")
# a reference to a negative id, as a whole string (`"$-1"`): no action has one (inside
# a longer string `$-1` is text, "costs $-1")
_NEGATIVE_REF = re.compile(r"\s*\$(?:\{\s*(-\d+)\s*\}|(-\d+))\s*")
_MAX_DEPTH = 32
# the most digits an action id has: a plan numbers its actions from 1, and a `$N` with
# more digits names no action
MAX_ID_DIGITS = 9


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """Why a plan (or a joiner answer) was rejected.

    :param code: a stable name: ``unknown_tool``, ``bad_args``, ``bad_reference``,
        ``bad_id``, ``after_join``, ``two_joins``, ``no_join``, ``after_end``,
        ``empty_plan``, ``cycle``, ``garbage``, ``unterminated``, ``too_many_steps``,
        ``bad_json``, ``timeout``, ``truncated``, ``bad_joiner``, ``bad_thoughts``,
        ``too_long``, ``unknown_workflow``, ``unknown_model``...
    :param message: what is wrong, naming the offending text.
    :param line: 1-based line of the plan text, when there is one.
    :param raw: the raw planner output (filled in by the planner).
    :param will_retry: ``None`` when the planner gives the plan up and the driver decides
        whether to ask again; ``True``/``False`` when the planner handles the problem
        itself (it asks again / it gives up).
    :param attempt: the planner's own try (1, 2...) that met the problem, when it asks
        again itself; recorded instead of the driver's try, which stays at 1 meanwhile.
    :param layer: the AGoT layer whose proposal it is about, when it is one.
    """

    code: str
    message: str
    line: int | None = None
    raw: str | None = None
    will_retry: bool | None = None
    attempt: int | None = None
    layer: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def tries(n: int) -> str:
    """``1 try``, ``2 tries``: how many times something was asked, for a message."""
    return "1 try" if n == 1 else f"{n} tries"


def truncated_problem(what: str, max_tokens: int, raw: str | None = None,
                      line: int | None = None) -> PlanProblem:
    """A ``truncated`` problem: the response ended at ``max_tokens``."""
    return PlanProblem("truncated", f"the model stopped at max_tokens={max_tokens} before "
                                    f"{what} was complete; raise max_tokens", line, raw)


def timeout_problem(what: str, timeout_s: float | None) -> PlanProblem:
    """A ``timeout`` problem: an LLM call ran past ``plan_timeout_s``."""
    return PlanProblem("timeout", f"{what} did not finish within plan_timeout_s="
                                  f"{timeout_s or 0:g}s; the call was stopped")


PathKey = str | int


@dataclass(frozen=True, slots=True)
class PlanRef:
    """An argument that is exactly the result of action ``id`` (stays typed), or the part
    of it at ``path`` (``$1["temp"]``, ``$1.temp``, ``$1[0]``: keys and list indexes)."""

    id: int
    path: tuple[PathKey, ...] = ()

    def __repr__(self) -> str:
        return f"${self.id}{path_text(self.path)}"


def path_text(path: tuple[PathKey, ...]) -> str:
    """A path as a step reference writes it: ``.temp``, ``[0]``, ``['a key']``."""
    out = []
    for key in path:
        if isinstance(key, int):
            out.append(f"[{key}]")
        elif _IDENT.fullmatch(key):
            out.append(f".{key}")
        else:
            out.append(f"['{key}']" if "'" not in key else f'["{key}"]')
    return "".join(out)


def path_problem(key: PathKey) -> str | None:
    """Why ``key`` cannot be part of a path (a step reference could not hold it), or None."""
    if isinstance(key, int) or _IDENT.fullmatch(key):
        return None
    if any(c in key for c in "[]{}") or ("'" in key and '"' in key):
        return f"the key {key!r} cannot be used in a path (no brackets or braces, one kind " \
               "of quote)"
    return None


def parse_path(text: str) -> tuple[PathKey, ...]:
    """The keys of a path written as ``_PATH`` matches it (``.a[0]['b c']``)."""
    keys: list[PathKey] = []
    for m in _SEGMENT.finditer(text):
        if m.group(1) is not None:
            keys.append(m.group(1))
        elif m.group(2) is not None:
            keys.append(int(m.group(2)))
        else:
            keys.append(m.group(3) if m.group(3) is not None else m.group(4))
    return tuple(keys)


def walk_path(value: Any, path: tuple[PathKey, ...]) -> Any:
    """The part of ``value`` at ``path``.

    :raises LookupError: naming the key that is missing.
    """
    for key in path:
        try:
            if isinstance(value, list) and isinstance(key, int):
                value = value[key]
            elif isinstance(value, dict) and isinstance(key, str):
                value = value[key]
            elif isinstance(value, dict) and str(key) in value:
                value = value[str(key)]
            else:
                raise LookupError(key)
        except (KeyError, IndexError):
            raise LookupError(key) from None
    return value


@dataclass(frozen=True, slots=True)
class Action:
    """One planned tool call.

    :param args: arguments by parameter name; values may be :class:`PlanRef` or strings
        with ``$N`` inside.
    :param deps: ids of the actions it uses, ascending.
    :param text: the call as written (``search("x")``).
    :param reused: a repaired plan repeats, unchanged, an action its rejected predecessor
        already started: it is not started again.
    """

    id: int
    tool: str
    args: dict[str, Any]
    deps: tuple[int, ...]
    line: int
    text: str
    thought: str | None = None
    reused: bool = False

    def step_args(self, ref: Callable[[int], str]) -> dict[str, Any]:
        """Arguments with each reference rewritten to a ``${steps.ID.output}`` reference.

        :param ref: action id -> the step reference text (``${steps.p__3.output}``).
        """
        return {k: _rewrite(v, ref) for k, v in self.args.items()}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "tool": self.tool, "args": _show(self.args),
                "deps": list(self.deps), "line": self.line, "thought": self.thought}


@dataclass(frozen=True, slots=True)
class Joined:
    """The plan's ``join()``: no more actions follow.

    :param answer: ``join($N)``: the plan names action N's result as its answer.
    """

    line: int
    answer: int | None = None


ParseEvent = Action | Joined | PlanProblem


@dataclass
class ParsedPlan:
    """A whole plan after parsing: what ``ponder plan parse`` prints."""

    actions: list[Action] = field(default_factory=list)
    problems: list[PlanProblem] = field(default_factory=list)
    joined: bool = False
    answer: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": self.ok, "actions": [a.to_json() for a in self.actions],
            "errors": [{"line": p.line, "code": p.code, "message": p.message}
                       for p in self.problems]}
        if self.answer is not None:
            doc["answer"] = self.answer
        return doc


def string_refs(text: str) -> list[int]:
    """Action ids referenced inside a string (``"$1 * ${2}"`` -> ``[1, 2]``; ``"$$3"`` is
    the literal text ``$3``). A number too long to be an action id is left out: see
    :func:`long_refs`."""
    return [int(digits) for m in _STRING_REF.finditer(text)
            if m.group(0) != "$$" and len(digits := m.group(1) or m.group(3)) <= MAX_ID_DIGITS]


def long_refs(value: Any, depth: int = 0) -> list[str]:
    """The numbers of ``$N`` references in the strings of ``value`` too long to be an
    action id (more than :data:`MAX_ID_DIGITS` digits): no action has them, and a
    number of thousands of digits cannot even be read as one."""
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, str):
        return [digits for m in _STRING_REF.finditer(value)
                if m.group(0) != "$$" and len(digits := m.group(1) or m.group(3)) > MAX_ID_DIGITS]
    if isinstance(value, dict):
        return [d for v in value.values() for d in long_refs(v, depth + 1)]
    if isinstance(value, list):
        return [d for v in value for d in long_refs(v, depth + 1)]
    return []


def json_int(digits: str) -> int | str:
    """A JSON integer as ``json.loads(..., parse_int=json_int)`` reads it: an ``int``, or
    its digits as text when it has more than ``int()`` reads (4300): json raised
    ValueError for such a number, out of parsers that never raise."""
    try:
        return int(digits)
    except ValueError:
        return digits


def no_such_action(digits: str) -> str:
    """The message for a reference to ``$<digits>``, a number no action has (zero, one
    of no action of the plan, a negative one, one too long to be an id)."""
    return f"no such action ${_shown_id(digits)}"


def no_such_answer(written: str, digits: str) -> str:
    """The message for a plan that names ``$<digits>`` as its answer, a number no action
    has; ``written`` is how the plan names it, ``{}`` standing for the number
    (``the answer join(${})``, ``the "answer" "${}"``)."""
    return f"{written.format(_shown_id(digits))}: {no_such_action(digits)}"


def _shown_id(digits: str) -> str:
    return digits if len(digits) <= 40 else digits[:20] + "..." + digits[-8:]


def negative_ref(text: str) -> str | None:
    """The number of ``text`` when it is exactly a reference to a negative id (``$-1``,
    ``${-1}``; spaces around it allowed), which no action has; else None."""
    m = _NEGATIVE_REF.fullmatch(text)
    return None if m is None else m.group(1) or m.group(2)


def whole_ref(text: str) -> int | None:
    """N when ``text`` is exactly ``$N`` or ``${N}`` (spaces around it allowed; a path may
    follow, see :func:`whole_plan_ref`), else None."""
    ref = whole_plan_ref(text)
    return ref.id if ref is not None else None


def whole_plan_ref(text: str) -> PlanRef | None:
    """The reference ``text`` is exactly (``$1``, ``${1}``, ``$1.temp``, ``$1[0]``,
    ``${1['a b']}``; spaces around it allowed), else None."""
    m = _WHOLE_REF.fullmatch(text)
    if m is None:
        return None
    if m.group(1) is not None:
        return PlanRef(int(m.group(1)), parse_path(m.group(2)))
    return PlanRef(int(m.group(3)), parse_path(m.group(4)))


def sub_string_refs(text: str, ref: Callable[[PlanRef], str]) -> str:
    """``text`` with each ``$N`` / ``${N}`` / ``${N.path}`` / ``$N[index]`` replaced by
    ``ref(PlanRef)`` and ``$$`` read as ``$``."""
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if len(m.group(1) or m.group(3)) > MAX_ID_DIGITS:
            return m.group(0)  # names no action (see long_refs): the text as written
        if m.group(1) is not None:
            return ref(PlanRef(int(m.group(1)), parse_path(m.group(2))))
        return ref(PlanRef(int(m.group(3)), parse_path(m.group(4))))

    return _STRING_REF.sub(one, text)


def _literal_text(text: str) -> str:
    """A string's literal text: references dropped, ``$$`` read as ``$``."""
    return _STRING_REF.sub(lambda m: "$" if m.group(0) == "$$" else "", text)


def holds_ref(value: Any) -> bool:
    """Whether a parsed argument value refers to another action's result."""
    return bool(_refs_in(value))


def _refs_in(value: Any, depth: int = 0) -> list[int]:
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, PlanRef):
        return [value.id]
    if isinstance(value, str):
        return string_refs(value)
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs_in(v, depth + 1)]
    if isinstance(value, list):
        return [r for v in value for r in _refs_in(v, depth + 1)]
    return []


def _negative_refs(value: Any, depth: int = 0) -> list[str]:
    """The numbers of the strings of ``value`` that are a reference to a negative id
    (see :func:`negative_ref`)."""
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, str):
        number = negative_ref(value)
        return [] if number is None else [number]
    if isinstance(value, dict):
        return [d for v in value.values() for d in _negative_refs(v, depth + 1)]
    if isinstance(value, list):
        return [d for v in value for d in _negative_refs(v, depth + 1)]
    return []


def _bad_brace_refs(value: Any, depth: int = 0) -> list[str]:
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, str):
        return [m.group(0) for m in _BAD_BRACE.finditer(_literal_text(value))]
    if isinstance(value, dict):
        return [b for v in value.values() for b in _bad_brace_refs(v, depth + 1)]
    if isinstance(value, list):
        return [b for v in value for b in _bad_brace_refs(v, depth + 1)]
    return []


def _bad_keys(value: Any, depth: int = 0) -> list[str]:
    """Why each object key in ``value`` that holds a reference (``"$1"``, ``"${1.x}"``,
    a negative or too long one) or the text ``${`` (``"$${x}"``) is refused. A key is
    text (a tool gets it as written, ``$$`` read as ``$``): it cannot hold a result."""
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, dict):
        found: list[str] = []
        for k, v in value.items():
            if isinstance(k, str):
                ref = next((m.group(0) for m in _STRING_REF.finditer(k) if m.group(0) != "$$"),
                           None)
                if ref is None and negative_ref(k) is not None:
                    ref = k.strip()
                if ref is not None:
                    found.append(f"the object key {k!r} refers to {ref}, but a key is text "
                                 "and cannot hold a result (a literal $ is $$)")
                elif _BAD_BRACE.search(_literal_text(k)) is not None:
                    found.append(f"the object key {k!r} holds the text ${{, which a plan "
                                 "cannot write (a step would read it as a workflow "
                                 "reference)")
            found += _bad_keys(v, depth + 1)
        return found
    if isinstance(value, list):
        return [b for v in value for b in _bad_keys(v, depth + 1)]
    return []


_SURROGATE = re.compile("[\ud800-\udfff]")


def join_surrogates(text: str) -> str:
    """``text`` with each UTF-16 surrogate pair (``"\\ud83d\\ude00"`` as a plan's escapes
    give it) joined into its character, as JSON reads it; a lone half stays."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _unencodable(id_: int, values: list[Any], line: int) -> list[PlanProblem]:
    """A ``bad_args`` problem for each part of an argument that JSON (the trace, a tool's
    input) cannot hold: a lone surrogate, a number that is not finite (``1e999``)."""
    return [PlanProblem("bad_args", f"action {id_}: an argument {unencodable_text(bad)}", line)
            for v in values for bad in unencodable_parts(v)]


def unencodable_text(part: str | float) -> str:
    """What is wrong with a part :func:`unencodable_parts` found, for a message."""
    if isinstance(part, float):
        return f"holds {part!r}, which is not a finite number"
    return (f"holds \\u{ord(part):04x}, half of a UTF-16 surrogate pair and no character by "
            "itself; write the character, or both halves (\\ud83d\\ude00)")


def unencodable_parts(value: Any, depth: int = 0) -> list[str | float]:
    """The lone surrogates (in strings and object keys) and the numbers that are not
    finite in an argument: no tool, trace or terminal can encode them."""
    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, str):
        return list(_SURROGATE.findall(value))
    if isinstance(value, float):
        return [] if math.isfinite(value) else [value]
    if isinstance(value, dict):
        return [c for k, v in value.items() for c in (*unencodable_parts(k, depth + 1),
                                                      *unencodable_parts(v, depth + 1))]
    if isinstance(value, list):
        return [c for v in value for c in unencodable_parts(v, depth + 1)]
    return []


def _rewrite(value: Any, ref: Callable[[int], str]) -> Any:
    if isinstance(value, PlanRef):
        return step_ref(value, ref)
    if isinstance(value, str):
        whole = whole_plan_ref(value)
        if whole is not None:  # `"$1.temp"` is `$1.temp`, as in the JSON format
            return step_ref(whole, ref)
        return sub_string_refs(value, lambda r: step_ref(r, ref))
    if isinstance(value, dict):
        # a key is text: `$$` is a `$` in it as in a string (a key holding a reference
        # is refused: see _bad_keys)
        return {_literal_text(k) if isinstance(k, str) else k: _rewrite(v, ref)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, ref) for v in value]
    return value


def step_ref(plan_ref: PlanRef, ref: Callable[[int], str]) -> str:
    """The step reference of ``plan_ref``: ``ref(id)`` (``${steps.p__1.output}``) with the
    path inside its braces (``${steps.p__1.output.temp}``)."""
    text = ref(plan_ref.id)
    if not plan_ref.path:
        return text
    return text[:-1] + path_text(plan_ref.path) + "}" if text.endswith("}") else text


def _show(value: Any) -> Any:
    """Arguments for display: references as ``"$N"`` (``"$N.path"``)."""
    if isinstance(value, PlanRef):
        return repr(value)
    if isinstance(value, dict):
        return {k: _show(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_show(v) for v in value]
    return value


class PlanBuilder:
    """Checks a plan's actions one by one, as they arrive.

    Ids must count up by one from ``first_id``; an action may use results of earlier
    actions of this plan and of ``known_ids`` (actions of earlier plans, whose numbering
    this plan continues). The first problem of an action rejects that action only, so a
    whole text can be checked for every error (``ponder plan parse``); the planner stops
    at the first one.

    A repair of a rejected plan may either continue after the actions its predecessor
    started (``reusable``: id -> call text) or repeat them unchanged from the round's
    first id; a repeated id with another call is an error.

    :param max_actions: the most actions one plan may have (``max_plan_steps``), the
        actions a rejected try started (``reusable``) included.
    :param allow_empty: a plan of only ``join()`` is fine (a repair whose rejected
        predecessor already started every action needed).
    """

    def __init__(self, catalog: ToolCatalog, *, first_id: int = 1,
                 known_ids: range | Iterable[int] = (), max_actions: int | None = None,
                 allow_empty: bool = False, reusable: Mapping[int, str] | None = None) -> None:
        self.catalog = catalog
        self.allow_empty = allow_empty
        self.first_id = first_id
        self.reusable = dict(reusable or {})
        # a range stays one: `ponder plan parse --first-id N` knows ids 1..N-1, and a set
        # of them took memory in proportion to N
        self._earlier: range | frozenset[int] = (
            known_ids if isinstance(known_ids, range) else frozenset(known_ids))
        self.max_actions = max_actions
        self.next_id = min(self.reusable, default=first_id)
        self.declared: dict[int, int] = {}  # id -> line, this plan's valid-looking ids
        self.actions: list[Action] = []
        self.joined_at: int | None = None
        self._forward: list[tuple[int, int]] = []  # (action, later action it uses)
        # actions with a valid id: what max_actions bounds. A repair's plan is still the
        # round's one plan: the actions its rejected predecessors started count too, or
        # each repair could add max_actions more
        self._action_count = len(self.reusable)
        self._written = 0  # every action line, even rejected ones
        # after an id that skipped numbers: the id after it, and it
        self._resume: tuple[int, int] | None = None
        # after an action whose id could not be read (see :meth:`unnumbered`): the
        # numbering as it was before it (next_id, _resume), and the number it took
        self._uncounted: tuple[int, tuple[int, int] | None, int] | None = None
        #: (problem returned by :meth:`action`, the problem of its tool or arguments that
        #: it hid): a plan is repaired one problem at a time, ``ponder plan parse`` shows both
        self.hidden: list[tuple[PlanProblem, PlanProblem]] = []
        # (problem returned by :meth:`action`, another bad reference or value of that
        # action): also in ``hidden``, and named in the planner's message (see
        # :meth:`planner_problem`)
        self._same_kind: list[tuple[PlanProblem, PlanProblem]] = []

    def action(self, id_: int, tool: str, positional: list[Any], keywords: dict[str, Any],
               *, line: int, text: str, thought: str | None = None) -> Action | PlanProblem:
        """Check one action; return it, or the first problem it has."""
        self._written += 1
        if self.joined_at is not None:
            return PlanProblem("after_join", f"action {id_} comes after join() "
                                             f"(line {self.joined_at})", line)
        declared = id_ in self.declared
        problem = self._check_id(id_, line)
        if problem is not None:
            # the rest of the action is a problem of its own: a malformed value, the tool,
            # the arguments, and its references, judged by the number it stands in for
            self._hide_unnumbered(problem, id_, tool, positional, keywords, line)
            self._hide_refs(problem, id_, [*positional, *keywords.values()], line,
                            own=not declared and id_ in self.declared)
            return problem
        if id_ in self.reusable:
            return self._reuse(id_, tool, text, line, thought)
        self._action_count += 1
        if self.max_actions is not None and self._action_count > self.max_actions:
            started = (f", counting the {len(self.reusable)} an earlier try of this plan "
                       "started" if self.reusable else "")
            return PlanProblem("too_many_steps", f"the plan has more than {self.max_actions} "
                               f"actions (max_plan_steps){started}", line)
        values = [*positional, *keywords.values()]
        deps = sorted({r for v in values for r in _refs_in(v)})
        malformed = self._value_problems(id_, values, line)
        # every reference is checked, not only up to the first bad one: each is a problem
        # of its own, and each forward one an edge a cycle may go through
        problems = [*malformed, *(p for dep in deps
                                  if (p := self._check_ref(id_, dep, line)) is not None)]
        try:
            args = self.catalog.bind(tool, positional, keywords, holds_ref)
        except BindError as exc:
            bound: PlanProblem | None = PlanProblem(exc.code, exc.message, line)
        else:
            bound = None
        if problems:
            problem, *others = list(dict.fromkeys(problems))
            self.hidden.extend((problem, other) for other in others)
            self._same_kind.extend((problem, other) for other in others)
            # the tool, and the arguments when every reference is well formed (bind reads
            # a malformed one as text: a type error there would follow from it), are a
            # problem of their own
            if bound is not None and (not malformed or bound.code == "unknown_tool"):
                self.hidden.append((problem, bound))
            return problem
        if bound is not None:
            return bound
        action = Action(id_, tool, args, tuple(deps), line, text, thought)
        self.actions.append(action)
        return action

    def unread(self, id_: int, tool: str | None, problem: PlanProblem, *,
               values: list[Any] | None = None, names: Sequence[str] = ()) -> PlanProblem:
        """``problem``, of an action numbered ``id_`` that the parser could not read whole
        (its arguments, text after its call, a call never closed): its number counts as
        used, so that the next action is not said to skip it. Its number (out of order,
        after join()), its tool (when readable and not ``join``) and the argument
        ``values`` it could read (their references, when the number is right) and the
        ``names`` of its arguments given by name (one the tool does not have) are checked
        too, as problems of their own (:attr:`hidden`). A missing argument is not: the one
        that could not be read may be it."""
        self._written += 1
        line = problem.line or 0
        if self.joined_at is not None:
            self.hidden.append((problem, PlanProblem(
                "after_join", f"action {id_} comes after join() (line {self.joined_at})",
                line)))
            return problem
        declared = id_ in self.declared
        bad_id = self._check_id(id_, line)
        if bad_id is not None:
            self.hidden.append((problem, bad_id))
        found = self._value_problems(id_, values or [], line)
        if bad_id is None:
            deps = sorted({r for v in values or [] for r in _refs_in(v)})
            found += [p for dep in deps if (p := self._check_ref(id_, dep, line)) is not None]
        else:
            found += self._wrong_id_refs(id_, values or [], line,
                                         own=not declared and id_ in self.declared)
        info = self.catalog.tools.get(tool) if tool is not None else None
        unknown = [n for n in dict.fromkeys(names) if info is not None
                   and n not in info.arg_names]
        if unknown:
            allowed = ", ".join(info.arg_names) if info is not None else ""
            found.append(PlanProblem("bad_args", "; ".join(
                f"{tool}() has no argument {n!r} (arguments: {allowed or 'none'})"
                for n in unknown), line))
        self.hidden.extend((problem, p) for p in dict.fromkeys(found))
        # a join( the parser could not read (never closed, say) is the plan's join(), not
        # a call of a tool: naming it unknown would be a second, wrong problem of the line
        if tool is not None and tool != "join":
            self._hide_unnumbered(problem, id_, tool, None, {}, line)
        return problem

    def unnumbered(self, problem: PlanProblem, tool: str | None = None,
                   positional: list[Any] | None = None,
                   keywords: Mapping[str, Any] | None = None) -> PlanProblem:
        """``problem``, of an action whose id could not be read (JSON's ``"id": true``,
        ``"id": "x"``, no ``"id"``): it takes the number expected, so that the next action
        does not skip it (it may also go on as if it were not there: the next one may
        have that number itself). Its tool and arguments (when read: ``positional`` not
        ``None``) are checked as those of an action with that number behind a wrong id,
        as problems of their own (:attr:`hidden`)."""
        self._written += 1
        line = problem.line or 0
        if self.joined_at is not None:
            self.hidden.append((problem, PlanProblem(
                "after_join", f"an action comes after join() (line {self.joined_at})", line)))
            return problem
        taken = self.next_id
        if tool is not None:
            self._hide_unnumbered(problem, taken, tool, positional, dict(keywords or {}),
                                  line)
        self._hide_refs(problem, taken, [*(positional or ()), *(keywords or {}).values()],
                        line, own=True)
        self._uncounted = (self.next_id, self._resume, taken)
        self.declared[taken] = line  # so that later uses of it are not errors too
        self.next_id = taken + 1
        if self._resume is not None:
            self._resume = (self._resume[0] + 1, self._resume[1])
        return problem

    def _hide_unnumbered(self, problem: PlanProblem, id_: int, tool: str,
                         positional: list[Any] | None, keywords: dict[str, Any],
                         line: int) -> None:
        """Add to :attr:`hidden` the problems of an action that ``problem`` (of its
        number, or of how it is written) rejected and that do not depend on its number:
        its malformed values, its tool, its arguments (with ``positional=None``, the tool
        only: the arguments were not read)."""
        values = [*(positional or ()), *keywords.values()]
        malformed = self._value_problems(id_, values, line) if positional is not None else []
        try:
            self.catalog.bind(tool, positional or [], keywords, holds_ref)
        except BindError as exc:
            bound: PlanProblem | None = PlanProblem(exc.code, exc.message, line)
        else:
            bound = None
        if bound is not None and positional is None and bound.code != "unknown_tool":
            bound = None  # the arguments were not read: only the tool can be judged
        if bound is not None and malformed and bound.code != "unknown_tool":
            bound = None  # bind read a malformed reference as text (see action())
        self.hidden.extend((problem, p) for p in dict.fromkeys(
            [*malformed, *([bound] if bound is not None else [])]))

    def _hide_refs(self, problem: PlanProblem, id_: int, values: list[Any], line: int, *,
                   own: bool) -> None:
        """Add to :attr:`hidden` the bad references of an action that ``problem`` (of its
        number) rejected (see :meth:`_wrong_id_refs`)."""
        self.hidden.extend((problem, p) for p in dict.fromkeys(
            self._wrong_id_refs(id_, values, line, own=own)))

    def _wrong_id_refs(self, id_: int, values: list[Any], line: int, *,
                       own: bool) -> list[PlanProblem]:
        """The bad references of an action numbered ``id_``, a wrong number: it stands in
        for the action expected there (:attr:`next_id`, the number its ``bad_id`` problem
        names), so it may use the results of the actions above it (and of earlier plans);
        ``$N`` of its own number (``own``: ``id_`` is declared by this action, not an
        earlier one), of the number expected or after it, or of no action is a problem.

        Unlike :meth:`_check_ref`, a forward reference here makes no edge of a cycle: the
        action is not part of the plan.
        """
        problems: list[PlanProblem] = []
        for dep in sorted({r for v in values for r in _refs_in(v)}):
            if own and dep == id_:
                problems.append(PlanProblem(
                    "bad_reference", f"action {id_} refers to its own result ${dep}", line))
            elif dep in self.declared or self.is_known(dep):
                continue
            elif dep >= self.next_id:
                problems.append(PlanProblem(
                    "bad_reference", f"action {id_} refers to ${dep}, which is not an "
                    "earlier action (an action can only use results of the actions above "
                    "it)", line))
            else:
                problems.append(PlanProblem(
                    "bad_reference", f"action {id_}: {no_such_action(str(dep))}", line))
        return problems

    def planner_problem(self, problem: PlanProblem) -> PlanProblem:
        """``problem`` as the planner reports it (one problem per try): its message goes on
        with every other bad reference or argument value of the same action, so that one
        repair fixes them all; a problem of the tool or of the arguments' types it hid
        (:attr:`hidden`) is left to the next try."""
        others = [o.message for p, o in self._same_kind if p is problem]
        if not others:
            return problem
        return dataclasses.replace(problem, message="; ".join([problem.message, *others]))

    def join(self, line: int, answer: int | str | None = None, *,
             written: str = "the answer join(${})") -> Joined | PlanProblem:
        """Check the plan's ``join()`` (``join($N)``: action N's result is the answer).
        Its number, if any, is not an action id: a wrong one is harmless, so it is not
        checked.

        :param answer: N, or its digits as written when they cannot be an action id
            (a negative number, more than :data:`MAX_ID_DIGITS` digits).
        :param written: how the plan names its answer, ``{}`` standing for N (the JSON
            format writes ``the "answer" "${}"``), for the message of a bad one.
        """
        if self.joined_at is not None:
            return PlanProblem("two_joins", f"a second join() (the first is on line "
                                            f"{self.joined_at})", line)
        self.joined_at = line
        if isinstance(answer, str):
            return PlanProblem("bad_reference", no_such_answer(written, answer), line)
        if answer is not None and answer not in self.declared and not self.is_known(answer):
            return PlanProblem("bad_reference", no_such_answer(written, str(answer)), line)
        return Joined(line, answer)

    def finish(self, *, ended: bool = True, rejected: int = 0,
               empty_message: str = "the plan has no actions before join()",
               last_line: int | None = None) -> list[PlanProblem]:
        """Problems visible only once the plan is complete.

        :param rejected: problems the parser already reported (lines it could not read):
            a plan whose only lines were rejected is not also reported as empty.
        :param last_line: the line where the plan ends (where a missing join() was due).
        :param empty_message: the message for a plan that joined with no action, in the words
            of its format.
        """
        problems: list[PlanProblem] = []
        cycle = self._cycle()
        if cycle:
            shown = " -> ".join(f"${i}" for i in [*cycle, cycle[0]])
            problems.append(PlanProblem("cycle", f"cycle: {shown}",
                                        self.declared.get(cycle[0])))
        empty = self._written == 0 and rejected == 0
        if empty and self.allow_empty and self.joined_at is not None:
            pass
        elif empty and self.joined_at is not None:
            problems.append(PlanProblem("empty_plan", empty_message, self.joined_at))
        elif empty:
            problems.append(PlanProblem("empty_plan", "the plan has no actions"))
        elif self.joined_at is None and ended:
            problems.append(PlanProblem("no_join", "the plan does not end with join()",
                                        last_line))
        return problems

    # -- checks ------------------------------------------------------------------
    @staticmethod
    def _value_problems(id_: int, values: list[Any], line: int) -> list[PlanProblem]:
        """Every malformed argument value of an action: a reference no action can have, a
        ``${...}`` that is no reference, a value JSON cannot hold."""
        problems = [PlanProblem("bad_reference", f"action {id_}: {no_such_action(n)}", line)
                    for v in values for n in _negative_refs(v)]
        for bad in (b for v in values for b in _bad_brace_refs(v)):
            negative = negative_ref(bad)
            if negative is not None:  # "in ${-1}": the plan meant a reference
                problems.append(PlanProblem("bad_reference",
                                            f"action {id_}: {no_such_action(negative)}", line))
            else:
                problems.append(PlanProblem(
                    "bad_reference", f"{bad} is not a reference to an action; write $N or "
                    "${N} (a literal $ is $$, and a plan cannot write the text ${)", line))
        problems += _unencodable(id_, values, line)
        problems += [PlanProblem("bad_reference", f"action {id_}: {no_such_action(d)}", line)
                     for v in values for d in long_refs(v)]
        problems += [PlanProblem("bad_reference", f"action {id_}: {why}", line)
                     for v in values for why in _bad_keys(v)]
        return problems

    def _reuse(self, id_: int, tool: str, text: str, line: int,
               thought: str | None) -> Action | PlanProblem:
        if _canonical(text) != _canonical(self.reusable[id_]):
            return PlanProblem("bad_id", f"action {id_} already ran as "
                                         f"`{self.reusable[id_]}`; repeat it unchanged or "
                                         f"number new actions from {self.first_id}", line)
        action = Action(id_, tool, {}, (), line, text, thought, reused=True)
        self.actions.append(action)
        return action

    def is_known(self, id_: int) -> bool:
        """Whether action ``id_`` is one of earlier plans (``known_ids``) or one a rejected
        try of this round started (``reusable``)."""
        return id_ in self._earlier or id_ in self.reusable

    def _check_id(self, id_: int, line: int) -> PlanProblem | None:
        if self._uncounted is not None:
            next_id, before, taken = self._uncounted
            self._uncounted = None
            counted = id_ == self.next_id or (self._resume is not None
                                              and id_ == self._resume[0])
            if not counted and (id_ == next_id or (before is not None and id_ == before[0])):
                # the plan did not count the action whose id could not be read: this one
                # has the number it took
                self.declared.pop(taken, None)
                self.next_id, self._resume = next_id, before
        if self._resume is not None and id_ == self.next_id and id_ != self._resume[0]:
            # the plan went on from the number expected: the wrong id was a slip, and the
            # action that reaches its number is no repeat of it (one whose id could not be
            # read may have taken the numbers up to it)
            self.declared.pop(self._resume[1], None)
        if id_ in self.declared:
            where = f"line {self.declared[id_]}" if self.declared[id_] else "an earlier try"
            return PlanProblem("bad_id", f"action id {id_} is used twice (first in {where})",
                               line)
        if id_ in self._earlier and id_ not in self.reusable:
            return PlanProblem("bad_id", f"action id {id_} belongs to an earlier plan; number "
                                         f"new actions from {self.first_id}", line)
        if (id_ > self.next_id
                and all(i in self.reusable for i in range(self.next_id, id_))):
            # continuing after the started actions of a rejected try
            for i in range(self.next_id, id_):
                self.declared[i] = 0
            self.next_id = id_
        resume = self._resume[0] if self._resume is not None else None
        if id_ != self.next_id and id_ != resume:
            if id_ >= 1:
                self.declared[id_] = line  # so that later uses of it are not errors too
                # the plan may go on from the expected number (the line was a slip) or
                # from this one (it numbered on from here): neither is a second error
                self._resume = (id_ + 1, id_) if id_ > self.next_id else None
            return PlanProblem("bad_id", _bad_id(str(id_), self.next_id), line)
        if self._resume is not None and id_ != resume:
            self.declared.pop(self._resume[1], None)  # (as above: the wrong id was a slip)
        self.declared[id_] = line
        self.next_id, self._resume = id_ + 1, None
        return None

    def unreadable_id(self, digits: str, line: int) -> PlanProblem:
        """The problem of an action numbered ``digits``, a number no action can have (a
        negative one, one of more than :data:`MAX_ID_DIGITS` digits): the plan's
        numbering goes on as if the line were not there."""
        self._written += 1
        if self.joined_at is not None:
            return PlanProblem("after_join", f"action {_shown_id(digits)} comes after join() "
                                             f"(line {self.joined_at})", line)
        return PlanProblem("bad_id", _bad_id(digits, self.next_id), line)

    def _check_ref(self, id_: int, dep: int, line: int) -> PlanProblem | None:
        if dep == id_:
            return PlanProblem("bad_reference", f"action {id_} refers to its own result ${dep}",
                               line)
        if dep > id_:
            self._forward.append((id_, dep))
            return PlanProblem("bad_reference", f"action {id_} refers to ${dep}, which is not "
                               "an earlier action (an action can only use results of the "
                               "actions above it)", line)
        if dep not in self.declared and not self.is_known(dep):
            return PlanProblem("bad_reference", f"action {id_}: {no_such_action(str(dep))}",
                               line)
        return None

    def _cycle(self) -> list[int]:
        """A cycle through forward references, if any (earliest id first)."""
        if not self._forward:
            return []
        edges: dict[int, set[int]] = {}
        for a, b in self._forward:
            edges.setdefault(a, set()).add(b)
        for action in self.actions:
            for dep in action.deps:
                edges.setdefault(action.id, set()).add(dep)
        for start in sorted(edges):
            path = _find_path(edges, start, start)
            if path:
                return path
        return []


def _bad_id(digits: str, expected: int) -> str:
    """Why an action numbered ``digits`` is out of order, ``expected`` being its number.
    (An id of thousands of digits is shown cut, as is the one expected.)"""
    shown = f"action id {_shown_id(digits)}"
    if digits.startswith("-") or not digits.strip("0"):
        return (f"{shown} is not a valid action number (actions are numbered 1, 2, 3...): "
                f"expected {expected}")
    value = int(digits.lstrip("0") or "0") if len(digits.lstrip("0")) <= MAX_ID_DIGITS else None
    kind = ("goes back to a number" if value is not None and value < expected
            else "skips a number" if value == expected + 1 else "skips numbers")
    return f"{shown} {kind}: expected {_shown_id(str(expected))}"


def _canonical(call: str) -> str:
    """A call's text without the whitespace outside its string literals."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for ch in call:
        if quote is not None:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif not ch.isspace():
            out.append(ch)
    return "".join(out)


def _find_path(edges: dict[int, set[int]], start: int, goal: int) -> list[int]:
    """Nodes of a path start -> ... -> goal (goal not repeated), or [] (iterative DFS)."""
    stack: list[tuple[int, list[int]]] = [(start, [start])]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(edges.get(node, ())):
            if nxt == goal:
                return path
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return []
