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
inside a string; ``$$`` in a string is a literal ``$`` (``"costs $$5"``). A path picks a
part of a result: ``$1["temp"]``, ``$1.temp``, ``$1[0]`` (in a string ``${1.temp}``).
An action's arguments may run over several lines while brackets are open. ``#`` outside
a string starts a comment to the end of the line (``1. search("x")  # the city``).

What models write around a plan is read as they mean it: blank lines, comment lines,
Markdown code fences and lines of prose (``Here is the plan:``, a closing remark) are
skipped; an action may be numbered ``1.``, ``1)``, ``1:``, ``Action 1:`` or ``Step 1:``
(after a list bullet, in bold, its call in backticks); typographic quotes (``“Paris”``)
are quotes; an f-string is a string whose ``{$N}`` parts are results
(``f"in {$1}"``). A line that starts like an action but is not one (a number without a
call, a call without a number) is an error. ``<END_OF_PLAN>`` may be missing when the
plan ends with ``join()`` (servers strip it as a stop sequence); after it only another
action is an error. A line may end with LF, CRLF or a lone CR, and a byte order mark
before the plan is skipped.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import tokenize
from collections.abc import Callable, Sequence
from typing import Any

from planners.plan import (
    END_OF_PLAN,
    MAX_ID_DIGITS,
    Joined,
    ParseEvent,
    PathKey,
    PlanBuilder,
    PlanProblem,
    PlanRef,
    join_surrogates,
    path_problem,
)

# how models number an action: `1.`, `1)`, `1:`, `Action 1:`, `Step 1.`, after a Markdown
# list bullet, in bold (`**1.**`)
_NUMBERING = (r"[ \t]*(?:[-*+][ \t]+)?(?:\*\*|__)?(?:(?i:action|step)[ \t]*)?(-?\d+)"
              r"(?:\*\*|__)?[ \t]*[.):](?:\*\*|__)?[ \t]*")
_ACTION_HEAD = re.compile(_NUMBERING + r"`?([A-Za-z_][A-Za-z0-9_\-]*)\s*\(")
_JOIN = re.compile(r"(?:" + _NUMBERING + r"|[ \t]*)`?join\s*\(\s*"
                   r"(?:\$\{\s*(-?\d+)\s*\}|\$(-?\d+))?\s*\)`?\s*(?:#.*)?", re.IGNORECASE)
# a line that starts as an action would but is none: a number (`3 search`, `Step 2: look
# up Rome`, `-1. look up Rome`) or a call without one (`search("x")`); other lines are
# prose, skipped (`-5 degrees in Oslo` too)
_ACTION_LIKE = re.compile(r"[ \t]*(?:[-*+][ \t]+)?(?:\*\*|__)?(?:(?i:action|step)[ \t]*)?"
                          r"(?:\d|-\d+(?:\*\*|__)?[ \t]*[.):])"
                          r"|[ \t]*`?[A-Za-z_][A-Za-z0-9_\-]*\(")
# an unnumbered join written with arguments that are not one `$N` (`join("done")`)
_JOIN_CALL = re.compile(r"[ \t]*`?join\s*\(.*\)`?\s*(?:#.*)?", re.IGNORECASE)
_THOUGHT = re.compile(r"\s*thought\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
_BARE_REF = re.compile(r"\$\{\s*(-?\d+)\s*\}|\$(-?\d+)")
# the name `$N` becomes for Python's parser (`m` for a minus: `$-1` is `__ponder_ref_m1__`)
_REF_NAME = re.compile(r"__ponder_ref_(m?\d+)__")
# an f-string part that is a result: `{$1}`, `{${1}}`, `{$1["temp"]}`, `{$1.temp}`
_FSTRING_REF = re.compile(r"\s*\$(?:\{\s*(-?\d+)\s*\}|(-?\d+))((?:\.[A-Za-z_][A-Za-z0-9_]*"
                          r"|\[\s*-?\d{1,9}\s*\]|\[\s*'[^'\[\]{}]*'\s*\]"
                          r"|\[\s*\"[^\"\[\]{}]*\"\s*\])*)\s*")
# typographic quotes, each with the quotes that close it
_CURLY = {"\u201c": "\u201d\u201c", "\u201d": "\u201d\u201c", "\u201e": "\u201d\u201c",
          "\u2018": "\u2019\u2018", "\u2019": "\u2019\u2018", "\u201a": "\u2019\u2018"}
_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "True": True,
                          "False": False, "None": None}
# more digits than Python's parser reads as one integer (sys.get_int_max_str_digits())
_LONG_NUMBER = re.compile(rf"\d{{{sys.get_int_max_str_digits() + 1},}}"
                          if sys.get_int_max_str_digits() else r"(?!)")
# an argument by name, its value aside: `city=` of `city="Paris"`
_NAMED_ARGUMENT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
# an argument by name written as in JSON: `city: "Paris"`
_COLON_KEYWORD = re.compile(r"(^|,)(\s*[A-Za-z_][A-Za-z0-9_]*)\s*:(?!=)")
# a quote, then (after blanks and a string prefix) another: strings side by side, maybe
_QUOTES_SIDE_BY_SIDE = re.compile(r"""["'][ \t]*[rRbBuUfF]{0,2}["']""")
_MAX_PENDING_LINES = 64
_MAX_ACTION_CHARS = 20_000
_MAX_DEPTH = 32


class ArgSyntaxError(ValueError):
    """Arguments that are not a list of literals.

    :param values: the arguments read one by one when the list as a whole could not be
        (see :func:`read_call_args`), so that their references are checked too.
    """

    code = "bad_args"

    def __init__(self, message: str, *, values: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.values = list(values)


class TextPlanParser:
    """Feed text as it streams; get each action as soon as its line is complete.

    Never raises on bad input: every problem comes back as a :class:`PlanProblem`
    (with its 1-based line), and parsing goes on so that one text can be checked for
    all its errors.
    """

    def __init__(self, builder: PlanBuilder) -> None:
        self.builder = builder
        # the line being written, in pieces as they came (joined once the line ends: a
        # long line streamed token by token was copied whole for every token), and its
        # last characters, where an <END_OF_PLAN> split over two pieces begins
        self._buf: list[str] = []
        self._buf_end = ""
        self._raw: list[str] = []
        self._at_start = True  # nothing but empty pieces fed yet: a BOM may come
        self._after_cr = False  # the last piece ended with a CR: a LF next ends no line
        self._line_no = 1
        self._ended_at: int | None = None
        self._tail: list[str] = []
        self._tail_line = 0
        self._thought: list[str] = []
        self._pending: tuple[int, str] | None = None  # (first line, text so far)
        self._problems = 0  # problems reported so far
        self._prose: tuple[int, str] | None = None  # the first line of prose skipped
        self._last_line: int | None = None  # the last line that is not blank

    @property
    def raw(self) -> str:
        """Everything fed so far."""
        return "".join(self._raw)

    @property
    def ended(self) -> bool:
        """Whether ``<END_OF_PLAN>`` was read: what follows is no part of the plan."""
        return self._ended_at is not None

    def feed(self, text: str) -> list[ParseEvent]:
        """Add streamed text; return the events of every line it completed."""
        self._raw.append(text)
        text = self._normalize(text)
        if self._ended_at is not None:
            self._tail.append(text)
            return []
        probe = self._buf_end + text
        if "\n" not in text and END_OF_PLAN not in probe:  # the line goes on
            if text:
                self._buf.append(text)
            self._buf_end = probe[-(len(END_OF_PLAN) - 1):]
            return []
        buf, pos = "".join(self._buf) + text, 0
        out: list[ParseEvent] = []
        while True:
            newline = buf.find("\n", pos)
            end = buf.find(END_OF_PLAN, pos, len(buf) if newline == -1 else newline)
            if end != -1:
                out += self._line(buf[pos:end])
                out += self._flush_pending()
                self._ended_at = self._line_no
                self._tail, self._tail_line = [buf[end + len(END_OF_PLAN):]], self._line_no
                buf, pos = "", 0
                break
            if newline == -1:
                break
            out += self._line(buf[pos:newline])
            self._line_no += 1
            pos = newline + 1
        rest = buf[pos:]
        self._buf, self._buf_end = [rest] if rest else [], rest[-(len(END_OF_PLAN) - 1):]
        self._problems += _count_problems(out)
        return out

    def _normalize(self, text: str) -> str:
        """``text`` with a BOM opening the plan dropped and each line break written
        ``\\n``: a lone CR ends a line as a LF and a CRLF do (a CRLF split between two
        pieces is one line break). Editors save plans so; a plan of CR-ended lines was
        one line of "unexpected text after the call"."""
        if self._at_start and text:
            text = text.removeprefix("\ufeff")
            self._at_start = not text
        if text:
            if self._after_cr and text.startswith("\n"):
                text = text[1:]
            self._after_cr = text.endswith("\r")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def close(self) -> list[ParseEvent]:
        """The stream ended: finish the last line and report what only the end shows."""
        out: list[ParseEvent] = []
        if self._ended_at is None:
            if self._buf:
                out += self._line("".join(self._buf))
                self._buf, self._buf_end = [], ""
            out += self._flush_pending()
        else:
            out += self._after_end("".join(self._tail))
        if (self._prose is not None and not self.builder.actions
                and self._problems + _count_problems(out) == 0):
            # nothing but prose: the model did not write a plan, and its text says more
            # than "no actions"
            out.append(_garbage(self._prose[1], self._prose[0]))
        out += self.builder.finish(rejected=self._problems + _count_problems(out),
                                   last_line=self._ended_at or self._last_line)
        return out

    def _after_end(self, tail: str) -> list[ParseEvent]:
        """Text after ``<END_OF_PLAN>``: a closing remark is skipped; each action there is an
        error (the model meant more than it ended with)."""
        return [PlanProblem("after_end", f"text after {END_OF_PLAN}: {_clip(line.strip())!r}",
                            self._tail_line + offset)
                for offset, line in enumerate(tail.split("\n"))
                if _ACTION_HEAD.match(line) or _JOIN.fullmatch(line)
                or _JOIN_CALL.fullmatch(line)]

    # -- lines --------------------------------------------------------------------
    def _line(self, text: str) -> list[ParseEvent]:
        if text.strip():
            self._last_line = self._line_no
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
            ref = joined.group(2) or joined.group(3)
            # a number no action can have is given as written (int() refuses thousands
            # of digits)
            no_id = ref is not None and (ref.startswith("-") or len(ref) > MAX_ID_DIGITS)
            return [self.builder.join(self._line_no,
                                      ref if no_id else int(ref) if ref else None)]
        if _ACTION_HEAD.match(stripped):
            return self._action(self._line_no, stripped)
        if _JOIN_CALL.fullmatch(stripped) and "join" not in self.builder.catalog.tools:
            return self._bad_join(stripped, self._line_no)
        if _ACTION_LIKE.match(stripped):
            self._thought.clear()
            return [_garbage(stripped, self._line_no)]
        if self._prose is None:
            self._prose = (self._line_no, stripped)
        return []

    def _flush_pending(self) -> list[ParseEvent]:
        if self._pending is None:
            return []
        first, so_far = self._pending
        self._pending = None
        self._thought.clear()
        return [self._unread(_ACTION_HEAD.match(so_far), PlanProblem(
            "unterminated", f"the call {_clip(so_far.strip())!r} is never closed (unbalanced "
            "brackets or quotes)", first))]

    def _unread(self, head: re.Match[str] | None, problem: PlanProblem) -> PlanProblem:
        """``problem`` of an action the parser could not read whole, its number and tool
        told to the builder (:meth:`PlanBuilder.unread`): the next action does not skip a
        number, and a wrong number or tool is reported too."""
        digits = head.group(1) if head is not None else None
        if head is None or digits is None or digits.startswith("-") \
                or len(digits) > MAX_ID_DIGITS:
            return problem
        return self.builder.unread(int(digits), head.group(2), problem)

    def _action(self, first_line: int, raw: str) -> list[ParseEvent]:
        text = straighten_quotes(raw)
        head = _ACTION_HEAD.match(text)
        assert head is not None
        close = _close_paren(text, head.end())
        if close == -1:
            self._thought.clear()
            return [self._unread(head, PlanProblem(
                "garbage", f"unbalanced brackets in {_clip(text.strip())!r}", first_line))]
        if close is None:
            too_long = (raw.count("\n") >= _MAX_PENDING_LINES
                        or len(raw) > _MAX_ACTION_CHARS)
            self._pending = (first_line, raw)
            return self._flush_pending() if too_long else []
        thought = " ".join(self._thought) or None
        self._thought.clear()
        trailing = text[close + 1:].strip()
        if trailing.startswith("`"):
            trailing = trailing[1:].strip()  # the call in backticks: 1. `search("x")`
        if trailing and not trailing.startswith("#"):
            return [self._unread(head, PlanProblem(
                "garbage", f"unexpected text after the call: {_clip(trailing)!r}",
                first_line))]
        if head.group(2).lower() == "join" and head.group(2) not in self.builder.catalog.tools:
            return self._bad_join(text[head.start(2):close + 1], first_line)
        digits = head.group(1)
        if digits.startswith("-") or len(digits) > MAX_ID_DIGITS:
            # no action has it (and int() refuses thousands of digits): `-1.` was prose,
            # skipped with its action
            return [self.builder.unreadable_id(digits, first_line)]
        id_, tool = int(digits), head.group(2)
        try:
            positional, keywords, unreadable = read_call_args(text[head.end():close])
        except ArgSyntaxError as exc:
            return [self.builder.unread(id_, tool, PlanProblem(exc.code, f"action {id_}: {exc}",
                                                               first_line),
                                        values=exc.values,
                                        names=argument_names(text[head.end():close]))]
        if unreadable:
            # the arguments that were read are checked too (their references, values)
            return [self.builder.unread(id_, tool, PlanProblem(
                ArgSyntaxError.code, f"action {id_}: {'; '.join(unreadable)}", first_line),
                values=[*positional, *keywords.values()],
                names=argument_names(text[head.end():close]))]
        call = text[head.start(2):close + 1]
        return [self.builder.action(id_, tool, positional, keywords, line=first_line,
                                    text=" ".join(call.split()), thought=thought)]

    def _bad_join(self, call: str, line: int) -> list[ParseEvent]:
        """A ``join(...)`` with arguments other than one ``$N``: the plan's join(), written
        wrong. It was read as a call of a tool named ``join`` ("tool 'join' is not allowed
        here") followed by a missing join()."""
        self._thought.clear()
        shown = _clip(" ".join(call.split()))
        problem = PlanProblem("bad_args", "join() takes no arguments (or one $N, the action "
                              f"whose result is the answer), got {shown!r}", line)
        joined = self.builder.join(line)
        return [problem, *([joined] if isinstance(joined, PlanProblem) else [])]


def _garbage(text: str, line: int) -> PlanProblem:
    return PlanProblem("garbage", "expected `N. tool(arguments)`, `Thought: ...`, "
                       f"`join()` or {END_OF_PLAN}, got {_clip(text)!r}", line)


def straighten_quotes(text: str) -> str:
    """``text`` with each string in typographic quotes (``\u201cParis\u201d``,
    ``\u2018Rome\u2019``) outside ASCII-quoted strings written as a JSON string; quotes
    inside strings are kept."""
    if not any(c in text for c in _CURLY):
        return text

    def curly(text: str, i: int) -> tuple[str, int] | None:
        closers = _CURLY.get(text[i])
        if closers is None:
            return None
        end = next((j for j in range(i + 1, len(text)) if text[j] in closers), -1)
        if end == -1:
            return None  # never closed: left for the parser to name
        return json.dumps(text[i + 1:end], ensure_ascii=False), end + 1

    return _rewrite_code(text, curly)


def _rewrite_code(text: str, rewrite: Callable[[str, int], tuple[str, int] | None]) -> str:
    """``text`` with its string literals and ``#`` comments copied as they are, and what
    ``rewrite(text, i)`` makes of each other position: a replacement and the index after
    it, or ``None`` to copy the character."""
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
        elif ch == "#":
            end = text.find("\n", i)
            end = len(text) if end == -1 else end
            out.append(text[i:end])
            i = end
            continue
        else:
            done = rewrite(text, i)
            if done is not None:
                out.append(done[0])
                i = done[1]
                continue
            out.append(ch)
        i += 1
    return "".join(out)


def parse_call_args(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Parse the inside of ``tool(...)`` into positional and keyword literals.

    :raises ArgSyntaxError: naming each argument that is not a literal.
    """
    positional, keywords, problems = read_call_args(text)
    if problems:
        raise ArgSyntaxError("; ".join(problems))
    return positional, keywords


def read_call_args(text: str) -> tuple[list[Any], dict[str, Any], list[str]]:
    """The arguments of ``tool(...)`` that are literals, positional and by keyword, and
    what is wrong with each of the others (each argument is read whatever the others
    are).

    :raises ArgSyntaxError: when the text is no list of arguments at all.
    """
    source = _mark_bare_refs(_escape_line_breaks(text))
    try:
        tree = ast.parse("_(" + source + "\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        # Python's parser gives up on deep nesting (`-------1`, `1+1+...`) with these,
        # and its words for a long number or a NUL speak of Python ("use
        # sys.set_int_max_str_digits() to increase the limit", "source code string")
        said = getattr(exc, "msg", None) or str(exc)
        long = _LONG_NUMBER.search(source)
        msg = ("nested too deeply" if isinstance(exc, RecursionError | MemoryError)
               else f"a number of {len(long.group(0))} digits is too long to read"
               if long and "limit" in said
               else "a NUL character (\\x00) cannot be part of a call"
               if "\0" in source and "null" in said
               else _colon_keywords(source) or said or type(exc).__name__)
        raise ArgSyntaxError(f"cannot parse the arguments {_clip(text.strip())!r}: "
                             f"{msg}", values=_each_argument(text)) from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ArgSyntaxError(f"cannot parse the arguments {_clip(text.strip())!r}")
    problems: list[str] = _glued_strings(source)

    def read(node: ast.AST) -> tuple[bool, Any]:
        try:
            return True, _literal(node, 0)
        except ArgSyntaxError as exc:
            problems.append(str(exc))
        except RecursionError:
            problems.append("arguments nested too deeply")
        return False, None

    positional = [value for ok, value in map(read, call.args) if ok]
    keywords: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            problems.append("`**` is not allowed in arguments")
        elif kw.arg in keywords:  # Python's parser lets it through; the last one won
            problems.append(f"argument {kw.arg!r} is given twice")
        else:
            ok, value = read(kw.value)
            if ok:
                keywords[kw.arg] = value
    return positional, keywords, list(dict.fromkeys(problems))


def _each_argument(text: str) -> list[Any]:
    """The arguments of ``text`` (which does not parse as a whole) that parse alone: the
    call's other problems are found with the one that kept it from being read."""
    pieces = _top_level_pieces(text)
    values: list[Any] = []
    if len(pieces) < 2:
        return values  # one argument: it is the one that cannot be read
    for piece in pieces:
        try:
            positional, keywords, _ = read_call_args(piece)
        except ArgSyntaxError:
            continue
        values += [*positional, *keywords.values()]
    return values


def argument_names(text: str) -> list[str]:
    """The names of the arguments of ``tool(...)``'s inside given by name, whether their
    values can be read or not (``bogus=`` names ``bogus``)."""
    return [named.group(1) for piece in _top_level_pieces(text)
            if (named := _NAMED_ARGUMENT.match(piece))]


def _top_level_pieces(text: str) -> list[str]:
    """``text`` cut at each comma outside strings and brackets, blank pieces left out;
    ``[text]`` when a string is never closed (no cut can be trusted)."""
    pieces: list[str] = []
    depth, start, quote, i = 0, 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    if quote:
        return [text]
    pieces.append(text[start:])
    return [p for p in pieces if p.strip()]


def _colon_keywords(source: str) -> str | None:
    """What is wrong with arguments by name written ``name: value`` (as in JSON), when
    that is what kept them from being read; Python's parser says only "invalid syntax"."""
    colons = {m.group(2).strip() for m in _COLON_KEYWORD.finditer(source)}
    if not colons:
        return None
    try:
        fixed = ast.parse("_(" + _COLON_KEYWORD.sub(r"\1\2=", source) + "\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    # the first argument so written (a `, b:` inside a string is none)
    names = [kw.arg for kw in getattr(fixed.body, "keywords", []) if kw.arg in colons]
    if not names:
        return None
    return f"write an argument by name as {names[0]}=value, not {names[0]}: value"


def _glued_strings(source: str) -> list[str]:
    """A problem for each run of strings side by side on one line (``"Paris" "area"``):
    a comma left out, most likely. Python's parser reads them as one string, so the tool
    ran with ``"Parisarea"`` (strings over several lines are one string written long)."""
    if not _QUOTES_SIDE_BY_SIDE.search(source):
        return []  # (tokenizing every call doubled the time a plan takes to parse)
    runs: list[list[tokenize.TokenInfo]] = []
    last: tokenize.TokenInfo | None = None
    try:
        # inside the call's parentheses, as the parser read it: a line that begins with
        # blanks is no indentation there
        call = io.StringIO("_(" + source + "\n)")
        for token in tokenize.generate_tokens(call.readline):
            if token.type in (tokenize.NL, tokenize.COMMENT):
                continue
            if token.type == tokenize.STRING:
                if last is not None and last.type == tokenize.STRING \
                        and last.end[0] == token.start[0]:
                    runs[-1].append(token)
                else:
                    runs.append([token])
            last = token
    except (tokenize.TokenError, SyntaxError):  # ast.parse read it: tokenize should too
        pass
    return [f"{_clip(' '.join(t.string for t in run), 60)} are strings side by side, which "
            "read as one: put a comma between two arguments, or write one string"
            for run in runs if len(run) > 1]


def _escape_line_breaks(text: str) -> str:
    """``text`` with each line break inside a string literal written as ``\\n`` (a CRLF
    too): an action's arguments may run over several lines, a string among them too, as
    a JSON plan's string may hold a raw newline; Python's parser refused it
    ("unterminated string literal", at a line of its own count)."""
    if "\n" not in text and "\r" not in text:
        return text
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is None:
            if ch in "\"'":
                quote = ch
            elif ch == "#":  # a comment: its quotes open no string
                end = text.find("\n", i)
                end = len(text) if end == -1 else end
                out.append(text[i:end])
                i = end
                continue
        elif ch == "\\" and i + 1 < len(text):  # `\` before a line break goes on the line
            n = 3 if text.startswith("\r\n", i + 1) else 2
            out.append(text[i:i + n])
            i += n
            continue
        elif ch == quote:
            quote = None
        elif ch in "\r\n":
            out.append("\\n")
            i += 2 if text.startswith("\r\n", i) else 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _mark_bare_refs(text: str) -> str:
    """Replace ``$N`` outside string literals by a name the Python parser accepts, and
    f-strings by the strings they stand for (``f"in {$1}"`` is ``"in ${1}"``).

    :raises ArgSyntaxError: for an f-string part that is not a result.
    """
    def mark(text: str, i: int) -> tuple[str, int] | None:
        ch = text[i]
        if (ch in "fF" and text[i + 1:i + 2] in ("\"", "'")
                and not (i and (text[i - 1].isalnum() or text[i - 1] == "_"))):
            return _fstring(text, i + 1)
        if ch == "_" and text.startswith("__ponder_ref_", i) and not (
                i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            # the name a `$N` becomes: written as it is, it is no reference
            name = re.match(r"\w*", text[i:])
            raise ArgSyntaxError(f"`{_clip(name.group(0) if name else text[i:])}` is not a "
                                 "literal; quote text")
        if ch == "$":
            m = _BARE_REF.match(text, i)
            if m:
                digits = m.group(1) or m.group(2)
                # (a number no action has is read too, and named by the plan builder
                # with every other problem of the action: see _ref_of)
                return f"__ponder_ref_{digits.replace('-', 'm')}__", m.end()
        return None

    return _rewrite_code(text, mark)


def _fstring(text: str, start: int) -> tuple[str, int]:
    """The plain string literal an f-string opening at ``text[start]`` (its quote) stands
    for, and the index after it: ``{{``/``}}`` are braces, ``{$N...}`` a result.

    :raises ArgSyntaxError: for a part that is not a result (``{city}``, ``{$1:.2f}``).
    """
    quote = text[start]
    out = [quote]
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        if ch == quote:
            out.append(quote)
            return "".join(out), i + 1
        if text.startswith(("{{", "}}"), i):
            out.append(ch)
            i += 2
            continue
        if ch == "{":
            end = _closing_brace(text, i)
            inner = text[i + 1:end] if end != -1 else text[i + 1:]
            m = _FSTRING_REF.fullmatch(inner) if end != -1 else None
            if m is None:
                raise ArgSyntaxError(f"the f-string part {_clip('{' + inner.strip() + '}')!r} "
                                     "is not a result: only $N (or $N.field, $N[0]) can go in "
                                     "braces; write other text without them")
            digits = m.group(1) or m.group(2)
            # a number no action has: `${-1}` as written, which the plan builder names (its
            # path is no matter)
            bad = len(digits) > MAX_ID_DIGITS or digits.startswith("-")
            ref = "${" + digits + ("" if bad else m.group(3)) + "}"
            out.append(ref.replace("\\", "\\\\").replace(quote, "\\" + quote))
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), len(text)  # never closed: the parser names it


def _literal(node: ast.AST, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ArgSyntaxError("arguments nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):  # "\\ud83d\\ude00" is one character, as in JSON
            return join_surrogates(node.value)
        if isinstance(node.value, int | float | bool) or node.value is None:
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
            out[join_surrogates(key.value)] = _literal(value, depth + 1)
        return out
    elif isinstance(node, ast.Subscript | ast.Attribute):
        return _ref_path(node)
    elif isinstance(node, ast.Name):
        ref = _REF_NAME.fullmatch(node.id)
        if ref:
            return _ref_of(ref.group(1))
        if node.id in _NAMES:
            return _NAMES[node.id]
        if _REF_NAME.match(node.id):  # `$1_000`, `$1abc`: a reference is $N alone
            written = _written_refs(node.id)
            raise ArgSyntaxError(f"`{_clip(written)}` is not a reference: $N is a number "
                                 "only; write it apart, or quote text (a literal $ is $$)")
        raise ArgSyntaxError(f"`{node.id}` is not a literal; quote text, e.g. \"{node.id}\"")
    raise ArgSyntaxError(f"`{_clip(_unparse(node))}` is not a literal (strings, numbers, "
                         "lists, objects, true/false/null and $N only)")


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start`` (``{${1}}`` nests), or -1."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _ref_path(node: ast.Subscript | ast.Attribute) -> PlanRef | str:
    """``$1["temp"]``, ``$1.temp``, ``$1[0][-1]``: a part of a result (of a number no
    action has: the text ``$N``, see :func:`_ref_of`)."""
    path: list[PathKey] = []
    cur: ast.AST = node
    while isinstance(cur, ast.Subscript | ast.Attribute):
        if isinstance(cur, ast.Attribute):
            path.append(cur.attr)
        else:
            key = _literal(cur.slice, _MAX_DEPTH) if isinstance(
                cur.slice, ast.Constant | ast.UnaryOp) else None
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise ArgSyntaxError(f"`{_clip(_unparse(node))}`: an index must be a whole "
                                     "number or a quoted key")
            problem = path_problem(key)
            if problem is not None:
                raise ArgSyntaxError(f"`{_clip(_unparse(node))}`: {problem}")
            path.append(key)
        cur = cur.value
    ref = _REF_NAME.fullmatch(cur.id) if isinstance(cur, ast.Name) else None
    if ref is None:
        raise ArgSyntaxError(f"`{_clip(_unparse(node))}` is not a literal (strings, numbers, "
                             "lists, objects, true/false/null, $N and its parts such as "
                             "$N[\"key\"] only)")
    whole = _ref_of(ref.group(1))
    # a part of no action's result: the number is the problem (the path is no matter)
    return whole if isinstance(whole, str) else PlanRef(whole.id, tuple(reversed(path)))


def _ref_of(name: str) -> PlanRef | str:
    """The reference of a ``$N`` (its number as :data:`_REF_NAME` writes it); for a number
    no action can have (negative, more than :data:`MAX_ID_DIGITS` digits) the text
    ``$N``, which the plan builder reports with the action's other problems."""
    digits = "-" + name[1:] if name.startswith("m") else name
    if digits.startswith("-") or len(digits) > MAX_ID_DIGITS:
        return "$" + digits
    return PlanRef(int(digits))


def _written_refs(text: str) -> str:
    """``text`` with each name a ``$N`` became written back as ``$N``."""
    return _REF_NAME.sub(lambda m: "$" + m.group(1).replace("m", "-"), text)


def _unparse(node: ast.AST) -> str:
    try:
        return _written_refs(ast.unparse(node))
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
