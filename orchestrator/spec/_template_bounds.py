"""What one operation of a template may build, bounded before it is built.

A rendered template is cut at :data:`MAX_RENDER_CHARS` characters, but a value inside it
is made whole before anything is written: ``'x' | center(10**10)``, ``'x'.ljust(10**10)``,
``'%*s' % (10**10, 'x')`` or ``'{:>10000000000}'.format('x')`` asked for ten gigabytes,
and the process was killed for memory with its run. Each operation whose size a number
it is given decides (a width, a count, an indent) or that repeats a value it is given (a
separator, a replacement, a concatenation) is sized first here from its arguments, and
refused with :class:`TooLarge` when it would pass the limit; its result is never changed.
The sandbox (``templates._Sandbox``) calls these from Jinja2's own hooks: its ``call``
(methods), ``call_binop`` (``*``, ``+``, ``**``, ``%``), ``wrap_str_format``
(``str.format``), the filters it installs over Jinja2's, and its code generator's ``~``.

A render's work is bounded too (:data:`MAX_TEMPLATE_WORK`, counted by :func:`spend`):
its output can be small while its loops or a recursive macro run for hours. The
sandbox's code generator counts each loop iteration and each operand of a comparison;
its ``call``, ``call_binop`` and ``~`` count calls and what they go through or build;
every filter whose work grows with its value, and every test, counts that value.

What writes a value's text (``{{ items }}``, ``~``, ``string``, ``upper``...) sizes it
first with :func:`text_size`: a list of one long string repeated is small, its repr not.
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import pass_environment
from jinja2.filters import make_attrgetter
from jinja2.runtime import Macro
from jinja2.sandbox import SandboxedFormatter
from markupsafe import EscapeFormatter, Markup

#: most characters a rendered template, or one string or list a template builds, may
#: have: past it rendering stops with an error instead of taking the memory of the
#: process (`{{ ('x' * 100000) * 100000 }}` is ten gigabytes)
MAX_RENDER_CHARS = 10_000_000
#: the most digits, either way, a ``round`` is given: the template filter's and the calc
#: tool's. Past every float's and every printable int's digits (Python prints at most
#: 4,300), so no result changes, while Python computes ``10 ** ndigits`` first:
#: ``round(x, 10**9, 'floor')`` in a template, ``round(5, -10**8)`` in calc, took minutes
#: on a thread that a step's timeout cannot stop
MAX_ROUND_DIGITS = 5_000


def round_digits(ndigits: Any) -> Any:
    """The ``ndigits`` of a ``round``, held to :data:`MAX_ROUND_DIGITS` either way (what
    is no int as it is, for ``round`` to refuse or take)."""
    if isinstance(ndigits, int) and not isinstance(ndigits, bool):
        return max(-MAX_ROUND_DIGITS, min(ndigits, MAX_ROUND_DIGITS))
    return ndigits


class TemplateLimit(Exception):
    """A template went past one of the limits of this module."""


class TooLarge(TemplateLimit):
    """An operation of a template would build a value past :data:`MAX_RENDER_CHARS`."""


class TooMuchWork(TemplateLimit):
    """A render went past :data:`MAX_TEMPLATE_WORK` steps of work."""


def check_size(what: str, size: int, unit: str = "characters", *, at_least: bool = False
               ) -> None:
    """:raises TooLarge: naming ``what`` when ``size`` passes :data:`MAX_RENDER_CHARS`
    (``at_least``: a size counted until it passed, not to its end)."""
    if size > MAX_RENDER_CHARS:
        made = f"at least {size:,}" if at_least else f"{size:,}"
        raise TooLarge(f"{what} would make {made} {unit}, more than {MAX_RENDER_CHARS:,}")


# --- the text of a value -----------------------------------------------------------

#: the types whose repr :func:`text_size` counts without writing it: (opening, closing,
#: the whole repr when empty); a subclass with a repr of its own is written instead
_CONTAINERS: dict[type, tuple[int, int, int]] = {
    list: (1, 1, 2), tuple: (1, 1, 2), dict: (1, 1, 2), set: (1, 1, 5),
    frozenset: (11, 2, 11),  # frozenset({...}), frozenset()
}


_CONTAINER_TYPES = tuple(_CONTAINERS)


def _repr_size(value: Any, room: int) -> int:
    """``len(repr(value))``, or any number past ``room`` once it is known to pass it.

    :raises RecursionError: for a value nested past the interpreter's limit (as repr)."""
    if type(value) is str:
        if len(value) + 2 > room:
            return len(value) + 2
        if value.isascii() and value.isprintable():
            # quoted with ' (with " when only ' is in it), which is then escaped, as \
            escaped = value.count("\\") + (value.count("'") if '"' in value else 0)
            return len(value) + 2 + escaped
        return len(repr(value))  # (\n, \x01, \U0001f600: once, and at most 10x room)
    shape = next((_CONTAINERS[kind] for kind in type(value).__mro__
                  if kind in _CONTAINERS and type(value).__repr__ is kind.__repr__), None)
    if shape is None:
        try:
            return len(repr(value))  # a number, None, an object Jinja2 made: short
        except ValueError:
            return 0  # an int past Python's 4,300 digits: repr refuses it, as str
    opening, closing, empty = shape
    if not value:
        return empty
    size = opening + closing - 2
    pairs = value.items() if isinstance(value, dict) else ((item, None) for item in value)
    for key, item in pairs:
        size += 2 + _repr_size(key, room - size)  # `, ` before each but the first
        if isinstance(value, dict):
            size += 2 + _repr_size(item, room - size)  # `: `
        if size > room:
            return size
    if isinstance(value, tuple) and len(value) == 1:
        size += 1  # (x,)
    return size


def text_size(value: Any) -> int:
    """The length of ``str(value)`` (which a container writes as its repr), found
    without writing it: past :data:`MAX_RENDER_CHARS`, some number past it. A list of
    a long string repeated a thousand times is small, its text gigabytes.

    A value that is no string, number or container (of those, or of what Jinja2 makes)
    counts 0: its own ``str`` says why it has no text (an undefined name, `steps`)."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, list | tuple | dict | set | frozenset | int | float):
        return 0
    try:
        return _repr_size(value, MAX_RENDER_CHARS)
    except RecursionError:
        return 0  # str says so itself


def check_text(what: str, values: Iterable[Any], extra: int = 0) -> int:
    """The length of the texts of ``values`` (:func:`text_size`) and ``extra`` characters.

    :raises TooLarge: naming ``what`` when it would pass :data:`MAX_RENDER_CHARS`."""
    size, partial = extra, False
    for value in values:
        length = text_size(value)
        size += length
        partial = partial or (length > MAX_RENDER_CHARS and not isinstance(value, str))
    check_size(what, size, at_least=partial)
    return size


def sized_text(what: str, value: Any) -> str:
    """``str(value)``, once its length is known to fit.

    :raises TooLarge: naming ``what`` when it would not."""
    if isinstance(value, str):
        return value
    check_text(what, (value,))
    return str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | bytearray) else 0


# --- work -------------------------------------------------------------------------

#: most steps of work one render (or condition) may do: each loop iteration (each item a
#: loop's `if` tests), each call (a macro, a method, `loop(...)` of a recursive loop) and
#: each item, or :data:`CHARS_PER_STEP` characters, that a filter, a method or an
#: operator goes through or builds is one. A few-shot prompt over 1,000 examples takes
#: some thousands; two nested loops of 100,000 took hours, a macro calling itself twice
#: 2**n calls, and no limit on size bounds either (their output may be small)
MAX_TEMPLATE_WORK = 1_000_000
#: characters one step of work goes through (`upper` or `replace` go through a string
#: in C, some hundred times faster than a template's loop; `tojson` or `split` in ten)
CHARS_PER_STEP = 100
#: filters that go through their text a word or a character at a time in Python (or
#: make an item of each character): one step per character
_PER_CHAR_FILTERS = frozenset({"wordwrap", "title", "striptags", "urlize", "wordcount",
                               "list", "pprint", "urlencode"})
#: steps one call of a macro (or of a call block's `caller`) counts: it takes some twenty
#: times a loop's iteration
MACRO_CALL_STEPS = 20
#: filters whose work does not grow with their value (its length, its first item...)
_CONSTANT_FILTERS = frozenset({"length", "count", "first", "last", "default", "d", "attr",
                               "safe", "abs", "int", "float", "round", "random"})


class _Budget:
    __slots__ = ("spent",)

    def __init__(self) -> None:
        self.spent = 0


_budget: ContextVar[_Budget | None] = ContextVar("template_work", default=None)


@contextmanager
def work_budget() -> Iterator[None]:
    """Count the work of the render (or condition) run inside, from 0, with
    :func:`spend`."""
    token = _budget.set(_Budget())
    try:
        yield
    finally:
        _budget.reset(token)


def spend(steps: int) -> bool:
    """Count ``steps`` of work of the render in progress (none outside :func:`work_budget`).

    :returns: True (a loop's `if` is written ``spend(1) and test``).
    :raises TooMuchWork: once the render's work passes :data:`MAX_TEMPLATE_WORK`."""
    budget = _budget.get()
    if budget is not None:
        budget.spent += steps
        if budget.spent > MAX_TEMPLATE_WORK:
            raise TooMuchWork(
                f"the template did more than {MAX_TEMPLATE_WORK:,} steps of work (each "
                "loop iteration, call, and item or "
                f"{CHARS_PER_STEP:,} characters a filter, method or operator goes "
                "through counts one): a loop or a recursion too large for a prompt")
    return True


#: the types :func:`steps` counts one step at once (a comparison of numbers is in a
#: loop of most templates: its count is as cheap as Python allows)
_SCALARS = frozenset({int, float, bool, type(None)})
_TEXTS = (str, bytes, bytearray)
_COLLECTIONS = (list, tuple, dict, set, frozenset, range)


def steps(value: Any) -> int:
    """The work of going through ``value`` once: 1, and 1 per item or per
    :data:`CHARS_PER_STEP` characters."""
    if type(value) in _SCALARS:
        return 1
    if isinstance(value, _TEXTS):
        return 1 + len(value) // CHARS_PER_STEP
    if isinstance(value, _COLLECTIONS):
        return 1 + len(value)
    return 1


def spend_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Count a call a template makes: 1 (a macro's :data:`MACRO_CALL_STEPS`), and for a
    method of a string, bytes or container (``s.split()``, ``items.index(x)``) the sizes
    of that value and of the arguments, which it goes through (not ``_loop_vars``, which
    Jinja2 passes)."""
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, str | bytes | bytearray | list | tuple | dict | set | frozenset):
        spend(steps(owner) + sum(steps(a) for a in args)
              + sum(steps(v) for k, v in kwargs.items() if not k.startswith("_")))
    else:
        spend(MACRO_CALL_STEPS if isinstance(obj, Macro) else 1)


def _charged(original: Callable[..., Any], per_char: bool) -> Callable[..., Any]:
    """``original`` (a filter), counting the size of its value first (a string's
    characters each one step, when ``per_char``)."""
    passed = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        if len(args) > passed:
            value = args[passed]
            spend(1 + len(value) if per_char and isinstance(value, str) else steps(value))
        return original(*args, **kwargs)

    return run


def compared(value: Any) -> Any:
    """``value``, an operand of a comparison (`==`, `<`, `in`...), counted as the work of
    going through it once: `a == b` of two long texts or `x in items` of a long list
    goes through them (in C), as a filter does."""
    budget = _budget.get()  # (spend's work inline: a loop's `if` compares each item)
    if budget is not None:
        budget.spent += 1 if type(value) in _SCALARS else steps(value)
        if budget.spent > MAX_TEMPLATE_WORK:
            spend(0)  # raises
    return value


def charged_tests(tests: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """``tests`` (`is in`, `is eq`, `is lower`...), each counting what it is given as
    the operands of a comparison: one step, and one per item or
    :data:`CHARS_PER_STEP` characters."""

    def charged(original: Callable[..., Any]) -> Callable[..., Any]:
        passed = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(original)
        def run(*args: Any, **kwargs: Any) -> Any:
            spend(sum(steps(arg) for arg in args[passed:]) + sum(map(steps, kwargs.values())))
            return original(*args, **kwargs)

        return run

    return {name: charged(test) for name, test in tests.items()}


def charged_filters(filters: Mapping[str, Callable[..., Any]]
                    ) -> dict[str, Callable[..., Any]]:
    """``filters``, each whose work grows with its value counting that value's size."""
    return {name: f if name in _CONSTANT_FILTERS else _charged(f, name in _PER_CHAR_FILTERS)
            for name, f in filters.items()}


# --- methods of str and bytes, and int.to_bytes ---------------------------------------

def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], at: int, name: str,
         default: Any = None) -> Any:
    return args[at] if len(args) > at else kwargs.get(name, default)


def _padded(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    return max(len(obj), _int(_arg(args, kwargs, 0, "width")))


def _expanded(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    tab = "\t" if isinstance(obj, str) else b"\t"
    tabs: int = obj.count(tab)
    return len(obj) + tabs * max(_int(_arg(args, kwargs, 0, "tabsize", 8)), 0)


def _replaced(obj: Any, old: Any, new: Any, count: Any) -> int:
    if type(old) is not type(obj) and not isinstance(old, type(obj)):
        return 0  # refused by the method itself
    found = obj.count(old) if old else len(obj) + 1
    limit = _int(count) if isinstance(count, int) else -1
    if limit >= 0:
        found = min(found, limit)
    return int(len(obj) + found * (_length(new) - len(old)))


def _replace(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    return _replaced(obj, _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", ""),
                     _arg(args, kwargs, 2, "count", -1))


def _translated(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    table = _arg(args, kwargs, 0, "table")
    values = table.values() if isinstance(table, Mapping) else (
        table if isinstance(table, list | tuple) else ())
    return len(obj) * max([1, *(_length(v) for v in values)])


def _joined(sep: Any, items: list[Any]) -> int:
    return sum(_length(item) for item in items) + len(sep) * max(len(items) - 1, 0)


#: a method's name -> the size of what it returns, from the object and its arguments
_METHOD_SIZES: dict[str, Callable[[Any, tuple[Any, ...], Mapping[str, Any]], int]] = {
    "center": _padded, "ljust": _padded, "rjust": _padded, "zfill": _padded,
    "expandtabs": _expanded, "replace": _replace, "translate": _translated,
}


def checked_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
                 ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Size a call a template makes of a method of a string (``'x'.center(n)``,
    ``sep.join(items)``) or ``int.to_bytes`` before it runs.

    :returns: the arguments to call it with: a ``join``'s items made a list, once.
    :raises TooLarge: when what it returns would pass the limit.
    """
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if isinstance(owner, int) and not isinstance(owner, bool) and name == "to_bytes":
        check_size("to_bytes", _int(_arg(args, kwargs, 0, "length", 1)), "bytes")
    if not isinstance(owner, str | bytes | bytearray):
        return args, kwargs
    if name == "join" and args:
        items = list(args[0])
        check_size("join", _joined(owner, items))
        return (items, *args[1:]), kwargs
    sized = _METHOD_SIZES.get(name)
    if sized is not None:
        check_size(name, sized(owner, args, kwargs))
    return args, kwargs


# --- str.format and % -------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


def _spec_width(spec: str, what: str) -> int:
    """The largest number a format spec holds (its width or precision).

    :raises TooLarge: when it passes the limit."""
    runs = _DIGITS.findall(spec)
    for run in runs:
        if len(run) > len(str(MAX_RENDER_CHARS)):
            raise TooLarge(f"{what}: the format {spec!r} asks for more than "
                           f"{MAX_RENDER_CHARS:,} characters")
    widest = max((int(run) for run in runs), default=0)
    check_size(what, widest)
    return widest


class BoundedFormatter(SandboxedFormatter):
    """The sandbox's ``str.format`` formatter, sizing each field's format spec before the
    field is made and refusing once the fields made pass the limit (``'{0}{0}...'``
    repeats an argument)."""

    _made = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._made = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:  # `{!r}`: its text is written before it is formatted
            check_text("format", (value,), self._made)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        _spec_width(format_spec, "format")
        check_text("format", (value,), self._made)  # (a list's text is its repr)
        text = super().format_field(value, format_spec)
        self._made += len(text)
        check_size("format", self._made)
        return text


class BoundedEscapeFormatter(BoundedFormatter, EscapeFormatter):
    """:class:`BoundedFormatter` for a ``Markup`` string: its fields escaped."""


def str_format(env: Any, method: Any) -> Callable[..., str]:
    """A sandboxed ``str.format`` / ``str.format_map`` of ``method``'s string, as
    Jinja2's own, its fields sized by :class:`BoundedFormatter`."""
    text = method.__self__
    formatter = (BoundedEscapeFormatter(env, escape=text.escape) if isinstance(text, Markup)
                 else BoundedFormatter(env))
    is_format_map = method.__name__ == "format_map"

    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_format_map:
            if kwargs:
                raise TypeError("format_map() takes no keyword arguments")
            if len(args) != 1:
                raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
            kwargs, args = args[0], ()
        return type(text)(formatter.vformat(text, args, kwargs))  # type: ignore[no-any-return]

    return functools.update_wrapper(wrapper, method)


#: one conversion of printf-style formatting, after its `%` and its `(key)`
_CONVERSION = re.compile(r"[-+ #0]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)


def _percent_key(fmt: str, at: int) -> tuple[str, int] | None:
    """The `(key)` of a conversion starting at ``at`` (parentheses nest, as in Python)."""
    depth, i = 1, at + 1
    while i < len(fmt) and depth:
        depth += {"(": 1, ")": -1}.get(fmt[i], 0)
        i += 1
    return (fmt[at + 1:i - 1], i) if not depth else None


def percent_size(fmt: str, values: Any, *, of_bytes: bool = False) -> int:
    """An upper bound of the length of ``fmt % values``, as far as Python would get in it
    (up to a bad conversion or a missing value, where it stops with its own error). A
    conversion counts its width, and its value's text (computed once a value) cut or
    lengthened by its precision. ``of_bytes``: ``fmt`` is bytes read as Latin-1, whose
    `(key)` is bytes.

    :raises TooLarge: for a container whose text alone passes the limit (its size is
        counted only until it passes: "at least")."""
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if hasattr(values, "__getitem__") and not isinstance(
        values, tuple | str) else None
    texts: dict[tuple[int, str], int] = {}
    size, i = 0, 0
    while True:
        at = fmt.find("%", i)
        if at < 0:
            return size + len(fmt) - i
        size += at - i
        i = at + 1
        key = None
        if i < len(fmt) and fmt[i] == "(":
            found = _percent_key(fmt, i)
            if found is None or mapping is None:
                return size
            key, i = found
        match = _CONVERSION.match(fmt, i)
        if match is None:
            return size
        width, precision, conversion = match.groups()
        i = match.end()
        if conversion == "%":
            size += 1
            continue
        asked: dict[str, int] = {}
        for name, part in (("width", width), ("precision", precision)):
            if part == "*":
                if not positional:
                    return size
                asked[name] = abs(_int(positional.pop(0)))  # (-n: n, left-justified)
            elif part:
                if len(part) > len(str(MAX_RENDER_CHARS)):
                    return MAX_RENDER_CHARS + 1
                asked[name] = int(part)
        if key is not None:
            try:
                value = mapping[key.encode("latin-1") if of_bytes else key]  # type: ignore[index]
            except Exception:
                return size
        elif positional:
            value = positional.pop(0)
        else:
            return size
        text = texts.get((id(value), conversion))
        if text is None and conversion in "sra" and isinstance(
                value, list | tuple | dict | set | frozenset):
            text = text_size(value)  # its repr, not written (`ascii`'s only if it fits)
            if text > MAX_RENDER_CHARS:  # (counted until it passed: refused here, saying so)
                check_size("`%`", size + text, at_least=True)
            text = None if conversion == "a" else text
        if text is None:
            try:  # the value's text, or a number's digits (as many as its bits)
                # (bytes' `%b` as `%s`, whose text of bytes, b'..', is the longer)
                text = len(("%" + ("s" if conversion == "b" else conversion)) % (value,))
            except Exception:
                return size
            texts[(id(value), conversion)] = text
        if "precision" in asked:
            given = asked["precision"]
            text = min(text, given) if conversion in "srab" else text + given
        size += max(text, asked.get("width", 0))
        if size > MAX_RENDER_CHARS:
            return size


#: most bits of an integer `**` may produce (as the calc tool)
_MAX_POW_BITS = 4_000


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Size ``left operator right`` (`**`, `*`, `%`, `+`) before it is computed.

    :raises TooLarge: when it would pass the limit."""
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and (
                abs(left).bit_length() * right > _MAX_POW_BITS):
            raise TooLarge(f"{left} ** {right} is too large")
    elif operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and (
                    len(seq) * n > MAX_RENDER_CHARS):
                raise TooLarge(f"`*` would make a {type(seq).__name__} of "
                               f"{len(seq) * n:,} items, more than {MAX_RENDER_CHARS:,}")
    elif operator == "%":
        check_percent(left, right)
    elif isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple) and (
            len(left) + len(right) > MAX_RENDER_CHARS):
        raise TooLarge(f"`+` would make a {type(left).__name__} of "
                       f"{len(left) + len(right):,} items, more than {MAX_RENDER_CHARS:,}")


def check_percent(fmt: Any, values: Any) -> None:
    """:raises TooLarge: when ``fmt % values`` (a string's or bytes', the `format`
    filter's) would pass the limit."""
    if isinstance(fmt, bytes | bytearray):
        check_size("`%`", percent_size(fmt.decode("latin-1"), values, of_bytes=True))
    elif isinstance(fmt, str):
        check_size("`%`", percent_size(fmt, values))


# --- ~ --------------------------------------------------------------------------

def concat(join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
    """``a ~ b ~ c``: ``join`` (Jinja2's, which escapes where the template does) of the
    parts, once the length of their text is known to fit."""
    spend(1 + check_text("`~`", parts) // CHARS_PER_STEP)
    return join(parts)


# --- filters --------------------------------------------------------------------

def _bounded(env: Any, original: Callable[..., Any], before: Callable[..., Any]) -> Any:
    """``original`` (a Jinja2 filter) after ``before`` has sized its call: ``before`` gets
    the environment and the filter's own arguments (not the context, environment or
    evaluation context Jinja2 passes some filters first), and may return new ones to call
    it with (items made a list, once)."""
    passed = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        changed = before(env, *args[passed:], **kwargs)
        if changed is not None:
            args = (*args[:passed], *changed[0])
            kwargs = changed[1]
        return original(*args, **kwargs)

    return run


_Args = tuple[tuple[Any, ...], dict[str, Any]]


def _center(env: Any, value: Any, width: Any = 80) -> None:
    check_text("center", (value,))
    check_size("center", _int(width))


def _indent(env: Any, s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    text = sized_text("indent", s)
    pad = len(width) if isinstance(width, str) else max(_int(width), 0)
    check_size("indent", len(text) + (text.count("\n") + 1) * pad)


def _replace_filter(env: Any, s: Any, old: Any, new: Any, count: Any = None) -> None:
    check_size("replace", _replaced(sized_text("replace", s), sized_text("replace", old),
                                    sized_text("replace", new), -1 if count is None else count))


def _join_filter(env: Any, value: Any, d: Any = "", attribute: Any = None) -> _Args:
    items = list(value)
    shown = items if attribute is None else list(map(make_attrgetter(env, attribute), items))
    check_text("join", shown, len(sized_text("join", d)) * max(len(shown) - 1, 0))
    return (items, d, attribute), {}


def _format_filter(env: Any, value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent(sized_text("format", value), kwargs or args)


#: control characters, which JSON writes in six characters (or two: a newline)
_CONTROLS = dict.fromkeys(range(32))


def _json_size(value: Any) -> int:
    """An upper bound of the length of ``tojson`` of ``value`` (no indent), without
    writing it: a string's escapes counted (six characters for each non-ASCII character,
    control and `<>&'`), a container's parts summed."""
    if isinstance(value, str):
        escaped = sum(value.count(ch) for ch in "<>&'")
        controls = len(value) - len(value.translate(_CONTROLS))
        wide = len(value.encode("utf-8", "surrogatepass")) - len(value)
        return 2 + len(value) + value.count('"') + value.count("\\") + 5 * (
            escaped + controls + wide)
    if isinstance(value, dict):
        return 2 + sum(_json_size(str(k)) + 4 + _json_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 2 + sum(_json_size(v) + 2 for v in value)
    if value is None or isinstance(value, bool | int | float):
        return len(json.dumps(value))
    return _json_size(str(value))  # (a value the `default` writes, or refuses)


def _tojson(env: Any, value: Any, indent: Any = None) -> None:
    if indent is None:
        try:
            size = _json_size(value)
        except RecursionError:
            return  # the filter says why
        check_size("tojson", size)
        return
    step = len(indent) if isinstance(indent, str) else max(_int(indent), 0)
    try:
        flat = len(json.dumps(value, indent=0, default=str))
        nested = len(json.dumps(value, indent=1, default=str))
    except (TypeError, ValueError, RecursionError):
        return  # the filter says why
    check_size("tojson", flat + step * (nested - flat))


#: what HTML escaping adds for each character it escapes (`&` is `&amp;`, `"` `&#34;`)
_ESCAPED_EXTRA = {"&": 4, "<": 3, ">": 3, '"': 4, "'": 4}


def _escaped_size(text: str) -> int:
    return len(text) + sum(extra * text.count(ch) for ch, extra in _ESCAPED_EXTRA.items())


def _escape(env: Any, value: Any) -> None:
    if not hasattr(value, "__html__"):  # (Markup is written as it is)
        check_size("escape", _escaped_size(sized_text("escape", value)))


def _forceescape(env: Any, value: Any) -> None:
    text = value.__html__() if hasattr(value, "__html__") else value
    check_size("forceescape", _escaped_size(sized_text("forceescape", text)))


#: the bytes URL quoting keeps as they are (urllib's); it writes any other as `%XX`
_URL_KEPT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"


def _quoted_size(value: Any, for_qs: bool) -> int:
    data = value if isinstance(value, bytes) else sized_text("urlencode", value).encode()
    quoted = len(data.translate(None, _URL_KEPT if for_qs else _URL_KEPT + b"/"))
    return len(data) + 2 * quoted


def _urlencode(env: Any, value: Any) -> _Args | None:
    if isinstance(value, str) or not isinstance(value, Iterable):
        check_size("urlencode", _quoted_size(value, False))
        return None
    items = list(value.items() if isinstance(value, dict) else value)
    pairs = [item for item in items if isinstance(item, tuple | list) and len(item) == 2]
    check_size("urlencode", sum(_quoted_size(k, True) + _quoted_size(v, True) + 2
                                for k, v in pairs))
    return (items,), {}


def _batch(env: Any, value: Any, linecount: Any, fill_with: Any = None) -> None:
    if fill_with is not None:
        check_size("batch", _int(linecount), "items")


def _slice(env: Any, value: Any, slices: Any, fill_with: Any = None) -> None:
    check_size("slice", _int(slices), "lists")


def _round(env: Any, value: Any, precision: Any = 0, method: str = "common") -> _Args:
    return (value, round_digits(precision), method), {}


def _sum(env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> _Args:
    items = list(iterable)
    if isinstance(start, list | tuple):
        shown = items if attribute is None else list(
            map(make_attrgetter(env, attribute), items))
        check_size("sum", len(start) + sum(len(i) for i in shown if isinstance(i, list | tuple)),
                   "items")
    return (items, attribute, start), {}


@pass_environment
def _wordwrap(environment: Any, s: Any, width: Any = 79, break_long_words: bool = True,
              wrapstring: Any = None, break_on_hyphens: bool = True) -> str:
    """Jinja2's ``wordwrap``, its lines sized before they are joined (``wrapstring`` is
    put between each two)."""
    sep = environment.newline_sequence if wrapstring is None else wrapstring
    paragraphs = [textwrap.wrap(line, width=width, expand_tabs=False,
                                replace_whitespace=False, break_long_words=break_long_words,
                                break_on_hyphens=break_on_hyphens)
                  for line in s.splitlines()]
    check_size("wordwrap", sum(_joined(sep, lines) for lines in paragraphs)
               + len(sep) * max(len(paragraphs) - 1, 0))
    return sep.join([sep.join(lines) for lines in paragraphs])  # type: ignore[no-any-return]



def _texted(name: str) -> Callable[..., None]:
    """The check of a filter that writes its value's text (``str``) first."""

    def check(env: Any, value: Any, *args: Any, **kwargs: Any) -> None:
        check_text(name, (value,))

    return check


#: Jinja2's filters that write their value's text (`{{ items | upper }}` is the upper
#: case of a list's repr) and are not sized otherwise
_TEXT_FILTERS = ("string", "pprint", "upper", "lower", "capitalize", "title", "trim",
                 "striptags", "urlize", "wordcount", "safe")

#: Jinja2's filters this module sizes: name -> the check run before it
_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    **{name: _texted(name) for name in _TEXT_FILTERS},
    "center": _center, "indent": _indent, "replace": _replace_filter, "join": _join_filter,
    "format": _format_filter, "tojson": _tojson, "batch": _batch, "slice": _slice,
    "round": _round, "sum": _sum, "escape": _escape, "e": _escape,
    "forceescape": _forceescape, "urlencode": _urlencode,
}


def bounded_filters(env: Any) -> dict[str, Callable[..., Any]]:
    """The filters of ``env`` that this module bounds, bounded."""
    out = {name: _bounded(env, env.filters[name], check)
           for name, check in _FILTER_CHECKS.items()}
    out["wordwrap"] = _wordwrap
    return out


def sized_output(value: Any) -> Any:
    """The environment's ``finalize``, given each value a `{{ }}` writes: ``value``,
    once its text is known to fit (and counted as work: a container's text is written
    in C, as `~`'s)."""
    if isinstance(value, _CONTAINER_TYPES):  # (a number's text is short: 4,300 digits)
        size = text_size(value)
        check_size("`{{ }}`", size, at_least=True)
        spend(1 + size // CHARS_PER_STEP)
    return value


def lipsum(original: Callable[..., str]) -> Callable[..., str]:
    """The ``lipsum`` global, its paragraphs and words counted first."""

    @functools.wraps(original)
    def run(n: Any = 5, html: bool = True, min: Any = 20, max: Any = 100) -> str:
        check_size("lipsum", _int(n) * (_int(max) + _int(min)) * 12)
        return original(n, html, min, max)

    return run
