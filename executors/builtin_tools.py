"""Built-in tools: safe arithmetic, sleep, and a regex extractor.

`calc` parses the expression with :mod:`ast` and evaluates only numbers, the
arithmetic operators and a few math functions: no names, attributes, calls of
anything else, or `eval`.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

import anyio

from orchestrator.errors import ToolError
from orchestrator.spec import patterns
from orchestrator.spec._template_bounds import round_digits

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos,
                                                          ast.USub: operator.neg}


def _round(number: Any, ndigits: Any = None) -> Any:
    # ndigits held as a template's `round` holds it: past any number calc allows (about
    # 1,200 digits, or a float's 308 and 324) the result is what it is there: 0, or the
    # number itself
    return round(number, round_digits(ndigits))


_FUNCS: dict[str, Callable[..., Any]] = {
    "abs": abs, "round": _round, "min": min, "max": max, "sqrt": math.sqrt, "log": math.log,
    "exp": math.exp, "floor": math.floor, "ceil": math.ceil,
}
_CONSTS = {"pi": math.pi, "e": math.e}
_MAX_EXPONENT = 10_000
_MAX_LEN = 2_000
#: largest integer result, in bits (about 1,200 digits): bigger ones cost unbounded time
#: and memory, and cannot even be printed past Python's 4,300-digit limit
_MAX_BITS = 4_000


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(
            node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > _MAX_EXPONENT:
                raise ToolError(f"calc: exponent {right} is too large")
            if isinstance(left, int) and isinstance(right, int) and right > 0 and (
                    abs(left).bit_length() * right > _MAX_BITS):
                raise ToolError("calc: the result would be too large")
        if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int) and (
                abs(left).bit_length() + abs(right).bit_length() > _MAX_BITS):
            raise ToolError("calc: the result would be too large")
        return _check_size(_BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTS:
        return _CONSTS[node.id]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS and not node.keywords):
        try:
            return _check_size(_FUNCS[node.func.id](*(_eval(a) for a in node.args)))
        except TypeError as exc:
            raise ToolError(f"calc: {node.func.id}(): {exc}") from None
    raise ToolError(f"calc: `{ast.unparse(node)}` is not allowed (numbers, + - * / // % **, "
                    f"and {', '.join(sorted(_FUNCS))} only)")


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise ToolError("calc: the result is too large")
    if isinstance(value, complex):  # Python's answer to a negative number ** a fraction
        raise ToolError("calc: the result is not a real number (a negative number to a "
                        "fractional power?)")
    return value


def calc(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely, e.g. `(3 + 4) * 2` or `sqrt(16)`."""
    if len(expression) > _MAX_LEN:
        raise ToolError(f"calc: expression longer than {_MAX_LEN} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"calc: cannot parse {expression!r}: {exc.msg}") from None
    try:
        value = _eval(tree)
    except ZeroDivisionError:
        raise ToolError(f"calc: division by zero in {expression!r}") from None
    except OverflowError:
        raise ToolError(f"calc: the result is too large in {expression!r}") from None
    except ValueError as exc:
        raise ToolError(f"calc: {exc} in {expression!r}") from None
    if isinstance(value, float) and not math.isfinite(value):  # float overflow: inf, nan
        raise ToolError(f"calc: the result is too large in {expression!r}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value  # type: ignore[no-any-return]


async def sleep(seconds: float) -> float:
    """Wait for `seconds` (at most one hour) and return it."""
    if not 0 <= seconds <= 3600:
        raise ToolError(f"sleep: seconds must be between 0 and 3600, got {seconds}")
    await anyio.sleep(seconds)
    return seconds


def extract(text: str, pattern: str, group: int | str = 0, all: bool = False,
            ignore_case: bool = False) -> str | list[str] | None:
    """Extract text with a regular expression: the first match (or every match)."""
    flags = patterns.IGNORECASE if ignore_case else 0
    try:
        if all:
            return [m.group(group) for m in patterns.find_all(pattern, text, flags)]
        m = patterns.search(pattern, text, flags)
        return m.group(group) if m else None
    except patterns.PatternError as exc:
        raise ToolError(f"extract: bad pattern {exc}") from None
    except patterns.PatternTimeout as exc:
        raise ToolError(f"extract: {exc}") from None
    except IndexError as exc:
        raise ToolError(f"extract: no group {group!r} in {pattern!r}: {exc}") from None
