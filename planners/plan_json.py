"""The LLMCompiler plan as a JSON object, for grammar-constrained decoding. Pure.

::

    {"actions": [
      {"id": 1, "tool": "search", "args": {"query": "population of Paris"}},
      {"id": 2, "tool": "search", "args": {"query": "population of Rome"}},
      {"id": 3, "tool": "calc", "args": {"expression": "$1 + $2"}, "thought": "add"}
    ]}

``args`` is an object of named arguments (a list gives them by position). A string
that is exactly ``"$N"`` / ``"${N}"`` is action N's result, typed; ``$N`` inside a
longer string is interpolated (``$$`` is a literal ``$``). The end of the object is the
plan's ``join()``; an optional ``"answer": "$N"`` next to ``"actions"`` is
``join($N)``. Each action is reported as soon as its object closes, so dispatch can
start while the rest of the plan is still being decoded.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
import sys
from typing import Any

from planners.plan import (
    MAX_ID_DIGITS,
    Joined,
    ParseEvent,
    PlanBuilder,
    PlanProblem,
    PlanRef,
    negative_ref,
    whole_plan_ref,
)
from planners.tools import ToolCatalog

# `$`, `{` and `}` as one-character classes, not `\$`: llama.cpp's schema converter copies
# the escape into its grammar, whose parser knows no `\$` (the server and the local
# backend crashed on the plan schema)
# (`[.]` too; a path in a grammar-constrained plan is fields only: `"$1.temp"`; llama.cpp's
# converter hung on `[[]`/`[]]` classes)
_REF_SCHEMA = {"type": "string", "pattern": r"^[$][{]?[0-9]+([.][A-Za-z_][A-Za-z0-9_]*)*[}]?$"}
# `"answer": "$N"` names a whole action's result
_ANSWER_SCHEMA = {"type": "string", "pattern": r"^[$][{]?[0-9]+[}]?$"}
_CLOSERS = {"}": "{", "]": "["}
_SECOND_PLAN = re.compile(r'\{\s*"actions"\s*:')
_LINE_BREAK = re.compile(r"[\r\n]")
# `"answer": "$9999999999"`: a number too long to be an action id
_LONG = rf"\d{{{MAX_ID_DIGITS + 1},}}"
_LONG_ANSWER = re.compile(rf"\s*\$(?:\{{\s*({_LONG})\s*\}}|({_LONG}))\s*")
_MAX_DEPTH = 32
# more digits than Python turns into an int (sys.get_int_max_str_digits(): 4300)
_LONG_NUMBER = re.compile(rf"\d{{{sys.get_int_max_str_digits() + 1},}}"
                          if sys.get_int_max_str_digits() else r"(?!)")


def plan_schema(catalog: ToolCatalog, *, first_id: int = 1,
                max_actions: int | None = None, answer: bool = False) -> dict[str, Any]:
    """The JSON Schema of a plan over these tools (the request's ``json_schema``).

    Each argument accepts its own type or a ``"$N"`` reference.

    :param answer: allow ``"answer": "$N"`` (the plan names its answer).
    """
    variants = []
    for info in catalog.tools.values():
        props = {p.name: {"anyOf": [_plain(p.schema), _REF_SCHEMA]} for p in info.params}
        variants.append({
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": first_id},
                "tool": {"const": info.name},
                "args": {"type": "object", "properties": props,
                         "required": [p.name for p in info.params if p.required],
                         "additionalProperties": False},
                "thought": {"type": "string"},
            },
            "required": ["id", "tool", "args"],
            "additionalProperties": False,
        })
    actions: dict[str, Any] = {"type": "array", "minItems": 1,
                               "items": {"anyOf": variants} if variants else {"type": "object"}}
    if max_actions is not None:
        actions["maxItems"] = max_actions
    properties: dict[str, Any] = {"actions": actions}
    if answer:
        properties["answer"] = _ANSWER_SCHEMA
    return {"type": "object", "properties": properties, "required": ["actions"],
            "additionalProperties": False}


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    # `$ref`s point into the tool's own `$defs`, which the plan schema does not carry
    if "$ref" in json.dumps(schema):
        return {}
    return {k: v for k, v in schema.items() if k != "title"}


class JsonPlanParser:
    """Feed JSON text as it streams; get each action as soon as its object is complete.

    Never raises on bad input: problems come back as :class:`PlanProblem` events.
    """

    def __init__(self, builder: PlanBuilder) -> None:
        self.builder = builder
        self._text = ""
        self._newlines: list[int] = []  # offsets of every line break fed so far
        self._pos = 0
        self._stack: list[str] = []
        self._quote_start: int | None = None
        self._escape = False
        self._last_string: Any = None
        self._key: Any = None
        self._in_actions = False
        self._elem_start: int | None = None
        self._obj_start: int | None = None
        self._obj_end: int | None = None
        self._broken = False
        self._had_actions = False  # the object being scanned has an "actions" list
        self._skipped: tuple[int, int] | None = None  # the first object without one
        self._skipped_values: dict[str, int] = {}  # its _value_at
        # where each element of the "actions" list starts, and those reported already (the
        # objects the scan read); close() reports the rest at their lines
        self._elem_at: list[int] = []
        self._reported: set[int] = set()
        self._expect_elem = False  # the next character that is no space starts an element
        self._value_at: dict[str, int] = {}  # a top-level key -> just after its ':'
        self._join_action = False  # an action {"tool": "join"} joined the plan
        self._problems = 0  # problems reported so far

    @property
    def raw(self) -> str:
        return self._text

    def feed(self, text: str) -> list[ParseEvent]:
        """Add streamed text; return the events of every action object it completed."""
        start = len(self._text)
        # appended in place: `self._text += text` copied the whole plan for every token
        whole, self._text = self._text, ""
        whole += text
        self._text = whole
        for brk in _LINE_BREAK.finditer(text):  # where lines start, for _line_at
            at = start + brk.start()
            # a lone CR ends a line too, and a CRLF (maybe split between pieces) is one
            if not (brk.group() == "\n" and at and whole[at - 1] == "\r"):
                self._newlines.append(at)
        out: list[ParseEvent] = []
        while self._pos < len(self._text) and not self._broken and self._obj_end is None:
            out += self._scan_char()
            self._pos += 1
        self._problems += sum(isinstance(e, PlanProblem) for e in out)
        return out

    def close(self) -> list[ParseEvent]:
        """The stream ended: check the whole object, report what only the end shows."""
        out: list[ParseEvent] = []
        if self._obj_start is None and self._skipped is not None:
            self._obj_start, self._obj_end = self._skipped
            self._value_at = self._skipped_values
        prefix = self._prefix_problem()
        if prefix is not None:
            return self._finish([prefix], joined=False)
        if self._obj_start is None:
            return self._finish([], joined=False)
        end = self._obj_end if self._obj_end is not None else len(self._text)
        body = self._text[self._obj_start:end]
        try:
            doc = _loads(body)
        except json.JSONDecodeError as exc:
            line = self._line_at(self._obj_start + exc.pos)  # (json counts LFs only)
            # json's own words ("Expecting ',' delimiter") name nothing the model wrote
            # a bracket that closes the wrong one (`]` for `}`) stopped the scan: the object
            # is not cut short but broken there, as json says
            if self._obj_end is None and not self._broken:
                message = (f"the JSON plan is incomplete: it ends with "
                           f"{_shown(body[-_SHOWN:], cut='start')!r} before its object closes")
            else:
                message = (f"the JSON plan is not valid JSON: {exc.msg} at "
                           f"{_shown(body[exc.pos:exc.pos + _SHOWN])!r}")
            out.append(PlanProblem("bad_json", message, line))
            return self._finish(out, joined=False)
        except RecursionError:
            out.append(PlanProblem("bad_json", "the JSON plan is nested too deeply",
                                   self._line_at(self._obj_start)))
            return self._finish(out, joined=False)
        except ValueError:
            # a number of more digits than int() reads (4300): json raised ValueError
            # out of feed() and close(), which never raise
            long = _LONG_NUMBER.search(body)
            digits = len(long.group(0)) if long else 0
            out.append(PlanProblem("bad_json", f"the JSON plan holds a number of {digits} "
                                   "digits, too long to read",
                                   self._line_at(self._obj_start + (long.start() if long
                                                                    else 0))))
            return self._finish(out, joined=False)
        actions = doc.get("actions") if isinstance(doc, dict) else None
        if not isinstance(actions, list):
            out.append(PlanProblem("bad_json", "the plan must be an object with an "
                                   "\"actions\" list", self._line_of_value("actions")))
            return self._finish(out, joined=False)
        for k, element in enumerate(actions):  # those the incremental scan did not report
            if k not in self._reported:
                at = self._elem_at[k] if k < len(self._elem_at) else self._obj_start
                out += self._element(element, self._line_at(at))
        tail = self._text[end:]
        second = _SECOND_PLAN.search(tail)
        if second is not None:  # a remark after the plan is skipped; another plan is not
            out.append(PlanProblem("after_end", "a second plan after the JSON plan: "
                                   f"{tail[second.start():].strip()[:60]!r}",
                                   self._line_at(end + second.start())))
        answer: int | str | None = _answer_ref(doc.get("answer"))
        if answer is None and isinstance(doc.get("answer"), str):
            answer = _unknown_answer(doc["answer"])
        if "answer" in doc and answer is None:
            out.append(PlanProblem("bad_reference", "\"answer\" must name an action as "
                                   f"\"$N\", got {json.dumps(doc['answer'])[:40]}",
                                   self._line_of_value("answer")))
        if self.builder.joined_at is None:
            joined = self.builder.join(self._line_at(end - 1), answer,
                                       written='the "answer" "${}"')
            if isinstance(joined, PlanProblem) and "answer" in doc:
                # the plan joins where its object ends; a bad answer is on its own line
                joined = dataclasses.replace(joined, line=self._line_of_value("answer"))
            out.append(joined)
        return self._finish(out, joined=True)

    # -- scanning ------------------------------------------------------------------
    def _scan_char(self) -> list[ParseEvent]:
        i, ch = self._pos, self._text[self._pos]
        if self._quote_start is not None:
            if self._escape:
                self._escape = False
            elif ch == "\\":
                self._escape = True
            elif ch == '"':
                if len(self._stack) == 1:
                    try:
                        self._last_string = _loads(self._text[self._quote_start:i + 1])
                    except json.JSONDecodeError:
                        self._last_string = None
                self._quote_start = None
            return []
        if not self._stack:  # outside the plan: prose around it, a Markdown fence
            if ch == "{":
                self._obj_start, self._had_actions, self._value_at = i, False, {}
                self._stack.append(ch)
            return []
        if self._expect_elem and not ch.isspace():
            self._expect_elem = False
            if ch not in ",]":
                self._elem_at.append(i)
        if ch == '"':
            self._quote_start = i
        elif ch == ":" and len(self._stack) == 1:
            self._key = self._last_string
            if isinstance(self._key, str):
                self._value_at[self._key] = i + 1
        elif ch == "," and len(self._stack) == 2 and self._in_actions:
            self._expect_elem = True
        elif ch in "{[":
            if ch == "[" and len(self._stack) == 1 and self._key == "actions":
                self._in_actions = self._had_actions = True
                # JSON keeps the last "actions" list of an object: count this one's
                self._elem_at, self._reported, self._expect_elem = [], set(), True
            elif ch == "{" and len(self._stack) == 2 and self._in_actions:
                self._elem_start = i
            self._stack.append(ch)
        elif ch in _CLOSERS:
            if not self._stack or self._stack.pop() != _CLOSERS[ch]:
                self._broken = True
                return []
            if not self._stack and not self._had_actions:
                # an object with no "actions" list (`{city}` in prose, an example): the
                # plan may come after it; without one, it is the one reported
                if self._skipped is None:
                    self._skipped = (self._obj_start or 0, i + 1)
                    self._skipped_values = self._value_at
                self._obj_start, self._key, self._last_string = None, None, None
            elif not self._stack:
                self._obj_end = i + 1
            elif len(self._stack) == 1:
                self._in_actions = False
            elif len(self._stack) == 2 and self._in_actions and self._elem_start is not None:
                start, self._elem_start = self._elem_start, None
                try:
                    element = _loads(self._text[start:i + 1])
                except (ValueError, RecursionError):  # JSONDecodeError, a huge number
                    return []  # reported by close(), which parses the whole object
                self._reported.add(len(self._elem_at) - 1)
                return self._element(element, self._line_at(start))
        return []

    def _prefix_problem(self) -> PlanProblem | None:
        """Text and no JSON object at all (prose before the object is skipped)."""
        if self._obj_start is not None:
            return None
        text = self._text
        at = _skip_space(text, 1 if text.startswith("\ufeff") else 0)
        if text.startswith("```", at):
            at = _skip_space(text, at + 3)
            if text.startswith("json", at):
                at = _skip_space(text, at + 4)
        prefix = text[at:].rstrip()
        if prefix:
            # the line of the value itself, not of the blank lines or fence before it
            return PlanProblem("garbage", f"expected a JSON object, got {prefix[:60]!r}",
                               self._line_at(at))
        return None

    def _finish(self, out: list[ParseEvent], *, joined: bool) -> list[ParseEvent]:
        """``out`` and the builder's end-of-plan problems."""
        rejected = self._problems + sum(isinstance(e, PlanProblem) for e in out)
        # a JSON plan joins where its object ends; only a "join" action writes join()
        empty = ("the plan has no actions before join()" if self._join_action
                 else 'the plan\'s "actions" list is empty')
        return [*out, *self.builder.finish(ended=joined, rejected=rejected,
                                           empty_message=empty)]

    def _line_at(self, index: int) -> int:
        return bisect.bisect_left(self._newlines, index) + 1

    def _line_of_value(self, key: str) -> int:
        """The line of the value of the plan object's ``key`` (of the object when it has
        no such key)."""
        after = self._value_at.get(key)
        if after is None:
            return self._line_at(self._obj_start or 0)
        return self._line_at(_skip_space(self._text, after))

    # -- one action ------------------------------------------------------------------
    def _element(self, element: Any, line: int) -> list[ParseEvent]:
        if not isinstance(element, dict):
            return [PlanProblem("bad_json", f"each action must be an object, got "
                                            f"{json.dumps(element)[:60]}", line)]
        id_, tool = element.get("id"), element.get("tool")
        if tool == "join" and not (element.get("args") and "join" in self.builder.catalog.tools):
            self._join_action = True
            if element.get("args"):
                return self._bad_join(element["args"], line)
            return [self.builder.join(line)]
        if isinstance(id_, str) and _DIGITS.fullmatch(id_.strip()):
            id_ = int(id_)  # `"id": "2"`: a model's plain meaning, and `"$2"` reads it
        if isinstance(id_, float) and id_.is_integer():
            id_ = int(id_)  # `"id": 1.0`: a whole number all the same (AGoT reads it so)
        if isinstance(id_, float):
            return [self._unnumbered(element, PlanProblem(
                "bad_json", f"an action's \"id\" must be a whole number, got "
                            f"{json.dumps(id_)[:40]}", line))]
        if not isinstance(id_, int) or isinstance(id_, bool):
            return [self._unnumbered(element, PlanProblem(
                "bad_json", f"an action needs an integer \"id\", got "
                            f"{json.dumps(id_)[:40]}", line))]
        # a problem of how an action is written: its number is used all the same (the
        # next action skips none), and its tool checked (see PlanBuilder.unread)
        if not isinstance(tool, str):
            return [self.builder.unread(id_, None, PlanProblem(
                "bad_json", f"action {id_} needs a \"tool\" name", line))]
        args = element.get("args", {})
        thought = element.get("thought")
        if _depth(args) > _MAX_DEPTH:
            return [self.builder.unread(id_, tool, PlanProblem(
                "bad_args", f"action {id_}: arguments nested too deeply", line))]
        if isinstance(args, dict):
            positional: list[Any] = []
            keywords = {str(k): _refs(v) for k, v in args.items()}
        elif isinstance(args, list):
            positional, keywords = [_refs(v) for v in args], {}
        else:
            return [self.builder.unread(id_, tool, PlanProblem(
                "bad_args", f"action {id_}: \"args\" must be an object", line))]
        return [self.builder.action(id_, tool, positional, keywords, line=line,
                                    text=_call_text(tool, positional, keywords),
                                    thought=thought if isinstance(thought, str) else None)]

    def _unnumbered(self, element: dict[str, Any], problem: PlanProblem) -> PlanProblem:
        """``problem`` of an action object whose id cannot be read: it takes the number
        expected all the same (see :meth:`PlanBuilder.unnumbered`), and its tool and
        arguments are checked."""
        tool, args = element.get("tool"), element.get("args", {})
        if not isinstance(tool, str):
            return self.builder.unnumbered(problem)
        if _depth(args) > _MAX_DEPTH or not isinstance(args, dict | list):
            return self.builder.unnumbered(problem, tool)
        if isinstance(args, dict):
            return self.builder.unnumbered(problem, tool, [],
                                           {str(k): _refs(v) for k, v in args.items()})
        return self.builder.unnumbered(problem, tool, [_refs(v) for v in args])

    def _bad_join(self, args: Any, line: int) -> list[ParseEvent]:
        """A ``{"tool": "join"}`` with arguments: the plan's join(), written wrong. Its
        arguments were dropped silently; the answer is named by ``"answer": "$N"``."""
        shown = _shown(json.dumps(args, ensure_ascii=False)[:_SHOWN])
        problem = PlanProblem("bad_args", "join takes no arguments (name the answer with "
                              f"\"answer\": \"$N\" next to \"actions\"), got \"args\": {shown}",
                              line)
        joined = self.builder.join(line)
        return [problem, *([joined] if isinstance(joined, PlanProblem) else [])]



_SHOWN = 40  # characters of a plan a message quotes
#: an ``"id"`` written as a string of digits, read as its number; a longer one than any
#: action has is read too, to be reported as the number it is (not as "no integer")
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_ID_DIGITS + 1}}}")


def _shown(text: str, *, cut: str = "end") -> str:
    """``text`` (whitespace runs made one space) for a message, ``...`` where the plan
    goes on (``cut``: at the ``start`` or the ``end`` of the quote)."""
    flat = " ".join(text.split())
    if len(text) < _SHOWN:
        return flat
    return "..." + flat if cut == "start" else flat + "..."


def _skip_space(text: str, at: int) -> int:
    """The offset of the first character at or after ``at`` that is not whitespace."""
    return len(text) - len(text[at:].lstrip())


def _loads(text: str) -> Any:
    """Parse JSON allowing raw control characters (a newline, a tab) inside strings:
    llama.cpp's grammars let a model write them, and what it meant is plain."""
    return json.loads(text, strict=False)


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value (iterative: the value may be very deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        cur, d = stack.pop()
        deepest = max(deepest, d)
        if d > _MAX_DEPTH:
            break
        if isinstance(cur, dict):
            stack.extend((v, d + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, d + 1) for v in cur)
    return deepest


def _refs(value: Any) -> Any:
    if isinstance(value, str):
        ref = whole_plan_ref(value)
        return value if ref is None else ref
    if isinstance(value, list):
        return [_refs(v) for v in value]
    if isinstance(value, dict):
        return {k: _refs(v) for k, v in value.items()}
    return value


def _call_text(tool: str, positional: list[Any], keywords: dict[str, Any]) -> str:
    def show(v: Any) -> str:
        if isinstance(v, PlanRef):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)}: {show(x)}" for k, x in v.items()) + "}"
        return json.dumps(v, ensure_ascii=False)

    parts = [show(v) for v in positional] + [f"{k}={show(v)}" for k, v in keywords.items()]
    return f"{tool}({', '.join(parts)})"


def _unknown_answer(value: str) -> str | None:
    """The digits of an ``"answer"`` written as ``"$N"`` whose N no action can have
    (negative, more than :data:`~planners.plan.MAX_ID_DIGITS` digits), else None."""
    negative = negative_ref(value)
    if negative is not None:
        return negative
    m = _LONG_ANSWER.fullmatch(value)
    return None if m is None else m.group(1) or m.group(2)


def _answer_ref(value: Any) -> int | None:
    """The N of an ``"answer": "$N"`` (anything else, a path too, names no answer)."""
    ref = whole_plan_ref(value) if isinstance(value, str) else None
    return ref.id if ref is not None and not ref.path else None


__all__ = ["Joined", "JsonPlanParser", "plan_schema"]
