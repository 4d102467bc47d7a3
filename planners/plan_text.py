"""The LLMCompiler text plan format, parsed incrementally from a token stream. Pure.

::

    Thought: two look-ups that do not depend on each other
    1. search("population of Paris")
    2. search("population of Rome")
    3. calc("$1 + $2")
    4. join()
    <END_OF_PLAN>

Arguments are literals (``"text"``, numbers, lists, ``{"key": value}``, ``true``,
``false``, ``null``; Python spellings too) given by position or as ``name=value``.
``$N`` or ``${N}`` is the result of action N, as a whole argument, inside a list, or
inside a string; ``$$`` in a string is a literal ``$`` (``"costs $$5"``). An action's
arguments may run over several lines while brackets are open. ``#`` outside a string
starts a comment to the end of the line (``1. search("x")  # the city``). Blank lines,
comment lines and Markdown code fences are ignored; ``<END_OF_PLAN>`` may be missing when
the plan ends with ``join()`` (servers strip it as a stop sequence).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from planners.plan import END_OF_PLAN, Joined, ParseEvent, PlanBuilder, PlanProblem, PlanRef

_ACTION_HEAD = re.compile(r"\s*(\d{1,9})\s*\.\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*\(")
_JOIN = re.compile(r"\s*(?:\d{1,9}\s*\.\s*)?join\s*\(\s*"
                   r"(?:\$\{\s*(\d{1,9})\s*\}|\$(\d{1,9}))?\s*\)\s*(?:#.*)?", re.IGNORECASE)
_THOUGHT = re.compile(r"\s*thought\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
_BARE_REF = re.compile(r"\$\{\s*(\d{1,9})\s*\}|\$(\d{1,9})(?!\d)")
_REF_NAME = re.compile(r"__ponder_ref_(\d+)__")
_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "True": True,
                          "False": False, "None": None}
_MAX_PENDING_LINES = 64
_MAX_ACTION_CHARS = 20_000
_MAX_DEPTH = 32


class ArgSyntaxError(ValueError):
    """Arguments that are not a list of literals."""


class TextPlanParser:
    """Feed text as it streams; get each action as soon as its line is complete.

    Never raises on bad input: every problem comes back as a :class:`PlanProblem`
    (with its 1-based line), and parsing goes on so that one text can be checked for
    all its errors.
    """

    def __init__(self, builder: PlanBuilder) -> None:
        self.builder = builder
        self._buf = ""
        self._raw: list[str] = []
        self._line_no = 1
        self._ended_at: int | None = None
        self._tail = ""
        self._tail_line = 0
        self._thought: list[str] = []
        self._pending: tuple[int, str] | None = None  # (first line, text so far)
        self._problems = 0  # problems reported so far

    @property
    def raw(self) -> str:
        """Everything fed so far."""
        return "".join(self._raw)

    def feed(self, text: str) -> list[ParseEvent]:
        """Add streamed text; return the events of every line it completed."""
        self._raw.append(text)
        if self._ended_at is not None:
            self._tail += text
            return []
        self._buf += text
        out: list[ParseEvent] = []
        while self._ended_at is None:
            end = self._buf.find(END_OF_PLAN)
            newline = self._buf.find("\n")
            if end != -1 and (newline == -1 or end < newline):
                line, rest = self._buf[:end], self._buf[end + len(END_OF_PLAN):]
                self._buf = ""
                out += self._line(line)
                out += self._flush_pending()
                self._ended_at = self._line_no
                self._tail, self._tail_line = rest, self._line_no
                break
            if newline == -1:
                break
            line, self._buf = self._buf[:newline], self._buf[newline + 1:]
            out += self._line(line)
            self._line_no += 1
        self._problems += _count_problems(out)
        return out

    def close(self) -> list[ParseEvent]:
        """The stream ended: finish the last line and report what only the end shows."""
        out: list[ParseEvent] = []
        if self._ended_at is None:
            if self._buf:
                out += self._line(self._buf)
                self._buf = ""
            out += self._flush_pending()
        elif self._tail.strip():
            offset = len(self._tail) - len(self._tail.lstrip())
            line = self._tail_line + self._tail[:offset].count("\n")
            shown = self._tail.strip()
            out.append(PlanProblem("after_end", f"text after {END_OF_PLAN}: "
                                   f"{_clip(shown)!r}", line))
        out += self.builder.finish(rejected=self._problems + _count_problems(out))
        return out

    # -- lines --------------------------------------------------------------------
    def _line(self, text: str) -> list[ParseEvent]:
        if self._pending is not None:
            first, so_far = self._pending
            if _ACTION_HEAD.match(text) or _JOIN.fullmatch(text):
                # a new action begins: the pending one was never closed
                return [*self._flush_pending(), *self._line(text)]
            self._pending = None
            return self._action(first, so_far + "\n" + text)
        stripped = text.strip()
        if not stripped or stripped.startswith(("```", "#")):
            return []
        thought = _THOUGHT.fullmatch(stripped)
        if thought:
            self._thought.append(thought.group(1).strip())
            return []
        joined = _JOIN.fullmatch(stripped)
        if joined:
            self._thought.clear()
            ref = joined.group(1) or joined.group(2)
            return [self.builder.join(self._line_no, int(ref) if ref else None)]
        if _ACTION_HEAD.match(stripped):
            return self._action(self._line_no, stripped)
        self._thought.clear()
        return [PlanProblem("garbage", "expected `N. tool(arguments)`, `Thought: ...`, "
                            f"`join()` or {END_OF_PLAN}, got {_clip(stripped)!r}",
                            self._line_no)]

    def _flush_pending(self) -> list[ParseEvent]:
        if self._pending is None:
            return []
        first, so_far = self._pending
        self._pending = None
        self._thought.clear()
        return [PlanProblem("unterminated", f"the call {_clip(so_far.strip())!r} is never "
                            "closed (unbalanced brackets or quotes)", first)]

    def _action(self, first_line: int, text: str) -> list[ParseEvent]:
        head = _ACTION_HEAD.match(text)
        assert head is not None
        close = _close_paren(text, head.end())
        if close == -1:
            self._thought.clear()
            return [PlanProblem("garbage", f"unbalanced brackets in {_clip(text.strip())!r}",
                                first_line)]
        if close is None:
            too_long = (text.count("\n") >= _MAX_PENDING_LINES
                        or len(text) > _MAX_ACTION_CHARS)
            self._pending = (first_line, text)
            return self._flush_pending() if too_long else []
        thought = " ".join(self._thought) or None
        self._thought.clear()
        trailing = text[close + 1:].strip()
        if trailing and not trailing.startswith("#"):
            return [PlanProblem("garbage", f"unexpected text after the call: "
                                f"{_clip(trailing)!r}", first_line)]
        id_, tool = int(head.group(1)), head.group(2)
        try:
            positional, keywords = parse_call_args(text[head.end():close])
        except ArgSyntaxError as exc:
            return [PlanProblem("bad_args", f"action {id_}: {exc}", first_line)]
        call = text[head.start(2):close + 1]
        return [self.builder.action(id_, tool, positional, keywords, line=first_line,
                                    text=" ".join(call.split()), thought=thought)]


def parse_call_args(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Parse the inside of ``tool(...)`` into positional and keyword literals.

    :raises ArgSyntaxError: naming what is not a literal.
    """
    source = _mark_bare_refs(text)
    try:
        tree = ast.parse("_(" + source + "\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        # Python's parser gives up on deep nesting (`-------1`, `1+1+...`) with these
        msg = ("nested too deeply" if isinstance(exc, RecursionError | MemoryError)
               else getattr(exc, "msg", None) or type(exc).__name__)
        raise ArgSyntaxError(f"cannot parse the arguments {_clip(text.strip())!r}: "
                             f"{msg}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ArgSyntaxError(f"cannot parse the arguments {_clip(text.strip())!r}")
    try:
        positional = [_literal(a, 0) for a in call.args]
        keywords: dict[str, Any] = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise ArgSyntaxError("`**` is not allowed in arguments")
            keywords[kw.arg] = _literal(kw.value, 0)
    except RecursionError:
        raise ArgSyntaxError("arguments nested too deeply") from None
    return positional, keywords


def _mark_bare_refs(text: str) -> str:
    """Replace ``$N`` outside string literals by a name the Python parser accepts."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif ch == "#":  # a comment, to the end of the line: copied as it is
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            out.append(text[i:end])
            i = end
            continue
        elif ch == "$":
            m = _BARE_REF.match(text, i)
            if m:
                out.append(f"__ponder_ref_{m.group(1) or m.group(2)}__")
                i = m.end()
                continue
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _literal(node: ast.AST, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ArgSyntaxError("arguments nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str | int | float | bool) or node.value is None:
            return node.value
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = node.operand
        if (isinstance(inner, ast.Constant) and isinstance(inner.value, int | float)
                and not isinstance(inner.value, bool)):
            return -inner.value if isinstance(node.op, ast.USub) else inner.value
    elif isinstance(node, ast.List | ast.Tuple):
        return [_literal(e, depth + 1) for e in node.elts]
    elif isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise ArgSyntaxError("object keys must be quoted strings")
            out[key.value] = _literal(value, depth + 1)
        return out
    elif isinstance(node, ast.Name):
        ref = _REF_NAME.fullmatch(node.id)
        if ref:
            return PlanRef(int(ref.group(1)))
        if node.id in _NAMES:
            return _NAMES[node.id]
        raise ArgSyntaxError(f"`{node.id}` is not a literal; quote text, e.g. \"{node.id}\"")
    raise ArgSyntaxError(f"`{_clip(_unparse(node))}` is not a literal (strings, numbers, "
                         "lists, objects, true/false/null and $N only)")


def _unparse(node: ast.AST) -> str:
    try:
        return _REF_NAME.sub(lambda m: "$" + m.group(1), ast.unparse(node))
    except (ValueError, RecursionError, AttributeError):
        return type(node).__name__


def _close_paren(text: str, start: int) -> int | None:
    """Index of the ``)`` closing the call whose ``(`` ends at ``start``; None while it is
    still open; -1 when a bracket closes the wrong opener."""
    stack = ["("]
    pairs = {")": "(", "]": "[", "}": "{"}
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":  # a comment: its brackets and quotes do not count
            end = text.find("\n", i)
            if end == -1:
                return None
            i = end
            continue
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if stack.pop() != pairs[ch]:
                return -1
            if not stack:
                return i
        i += 1
    return None


def _count_problems(events: list[ParseEvent]) -> int:
    return sum(isinstance(e, PlanProblem) for e in events)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


__all__ = ["ArgSyntaxError", "Joined", "TextPlanParser", "parse_call_args"]
