"""Finding and validating the JSON value in a model's answer."""

from __future__ import annotations

import json
import math
import re
import secrets
from typing import Any

from orchestrator.errors import ConfigError

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_OPENERS = re.compile(r"[\[{]")


class _NonFinite(ValueError):
    """A JSON text holds ``NaN``, ``Infinity`` or ``-Infinity``, which Python's decoder
    takes but JSON has no number for."""


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(f"the answer's JSON holds {name}, which JSON has no number for")


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent; one too large for a float (``1e999``,
    which Python reads as infinity) is refused as ``Infinity`` is."""
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"the answer's JSON holds the number {text[:40]}, too large for "
                         "a JSON number a program can read")
    return value


def extract_json(text: str) -> Any:
    """The JSON value an answer holds.

    Tried in order: the content of each Markdown code fence, the whole text, then (in
    each of them) the first ``{`` or ``[`` from which a complete JSON value decodes, up
    to one that is never closed (a value cut off: what follows it is inside it).

    A value holding ``NaN``, ``Infinity`` or a number past a float's range (which
    Python's decoder takes, the last as infinity) is no JSON value: a schema's bounds
    do not hold it back, and the trace store records it as ``null``, so a replay or a
    resume would read another value than the step gave.

    :param text: the model's raw answer.
    :returns: the decoded value.
    :raises ValueError: when the text holds no JSON value, or only one holding ``NaN``
        or ``Infinity`` (naming it).
    """
    stripped = text.strip()
    # every fence: an answer may show code (```python) before its JSON (```json)
    candidates = [fenced.group(1).strip() for fenced in _FENCE.finditer(stripped)]
    candidates.append(stripped)
    non_finite: _NonFinite | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate, parse_constant=_refuse_constant,
                              parse_float=_finite_float)
        except json.JSONDecodeError:
            pass
        except _NonFinite as exc:
            non_finite = non_finite or exc
    decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
    for source in candidates:
        for opener in _OPENERS.finditer(source):
            try:
                value, _ = decoder.raw_decode(source, opener.start())
            except json.JSONDecodeError:
                if not _closes(source, opener.start()):
                    break  # a value cut off (at max_tokens): what follows is inside it
                continue
            except _NonFinite as exc:
                non_finite = non_finite or exc
                continue
            return value
    if non_finite is not None:
        raise ValueError(str(non_finite))
    raise ValueError("the answer holds no JSON value")


def _closes(source: str, start: int) -> bool:
    """Whether the bracket at ``start`` is closed before the text ends (brackets inside
    JSON strings not counted). One that is not opens a value that was cut off, such as an
    answer stopped at its token limit: the values after it are its own members, never
    the answer (``{"a": {"b": 1}, "c": [`` holds no JSON value, not ``{"b": 1}``)."""
    depth = 0
    in_string = escaped = False
    for char in source[start:]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return True
    return False


_ANY_TYPES = ("object", "array", "string", "number", "boolean", "null")
#: integer ranges up to this size are spelled out as an ``enum`` (an exact grammar)
_MAX_ENUM_RANGE = 256
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains")


def grammar_schema(schema: Any, ranges: list[tuple[str, str]] | None = None) -> Any:
    """Rewrite a JSON Schema into the forms that llama.cpp's schema-to-grammar converter
    renders without widening them.

    The converter (``llama_cpp.llama_grammar``) reads some forms more loosely than the
    schema means, so a grammar-constrained decode could write values the schema
    forbids (strings in an array of integers, for one):

    - ``"type": [A, B]`` is turned into ``A | B`` *without* the other keywords, so
      ``{"type": ["array", "null"], "items": {"type": "integer"}}`` admits an array
      of anything: here each type becomes an ``anyOf`` branch that keeps them;
    - an array without ``items`` becomes an array of any values even with
      ``"maxItems": 0``: here it gets an item schema that the bound never uses;
    - ``{}`` or ``true`` (any value, e.g. as ``items`` or ``additionalProperties``)
      becomes "any *object*": here it is spelled out as any value;
    - number bounds are ignored too: a bounded range of at most 256 integers becomes an
      ``enum`` (``multipleOf`` applied); a wider or one-sided integer range, and a
      bounded ``number``, is collected in ``ranges`` as a GBNF rule
      (:func:`integer_range_gbnf`, :func:`number_range_gbnf`) and replaced by a
      placeholder ``const`` that the caller swaps for it. A ``number``'s rule holds the
      smallest range with integer ends around its bounds (exact for integer bounds,
      wider by less than 1 otherwise). Without ``ranges`` such bounds stay unenforced
      by the grammar. What the grammar does not narrow (``multipleOf`` on a wide
      range, fractional bounds) is left to the validation after decoding, as
      everything is.

    :param schema: a JSON Schema (not modified).
    :param ranges: where to collect ``(placeholder, GBNF rule)`` pairs.
    :returns: an equivalent schema for the converter.
    """
    if schema is True or schema == {}:
        return {"anyOf": [{"type": t} for t in _ANY_TYPES]}
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: grammar_schema(v, ranges) for k, v in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [grammar_schema(v, ranges) for v in value]
        elif key in _SUBSCHEMA_ONE and (isinstance(value, dict) or value is True):
            out[key] = grammar_schema(value, ranges)
        else:
            out[key] = value
    types = out.get("type")
    if isinstance(types, list):
        unique = list(dict.fromkeys(types))
        if len(unique) == 1:
            out["type"] = unique[0]
        else:
            rest = {k: v for k, v in out.items() if k != "type"}
            return {"anyOf": [grammar_schema({**rest, "type": t}, ranges) for t in unique]}
    kind = out.get("type")
    if kind in (None, "array") and "items" not in out and "prefixItems" not in out \
            and out.get("maxItems") == 0:
        out["items"] = {"type": "null"}  # never written: at most 0 items
    if kind == "integer" and "enum" not in out and "const" not in out:
        low, high = _integer_bounds(out)
        if low is not None and high is not None and high < low:
            raise ConfigError(f"the schema {json.dumps(schema)[:80]} admits no integer")
        if low is not None and high is not None and high - low < _MAX_ENUM_RANGE:
            step = out.get("multipleOf")
            out["enum"] = [n for n in range(low, high + 1)
                           if not isinstance(step, int) or step <= 0 or n % step == 0]
        elif (low is not None or high is not None) and ranges is not None:
            return _placeholder(ranges, integer_range_gbnf(*_finite_range(low, high)))
    if kind == "number" and "enum" not in out and "const" not in out and ranges is not None:
        low, high = _number_hull(out)
        if low is not None and high is not None and high < low:
            raise ConfigError(f"the schema {json.dumps(schema)[:80]} admits no number")
        if low is not None or high is not None:
            return _placeholder(ranges, number_range_gbnf(low, high))
    return out


def _placeholder(ranges: list[tuple[str, str]], rule: str) -> dict[str, Any]:
    placeholder = f"ponder-range-{secrets.token_hex(6)}"
    ranges.append((placeholder, rule))
    return {"const": placeholder}


def _number_hull(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The smallest range with integer ends that holds a number schema's bounds."""
    lows = [math.floor(schema[k]) for k in ("minimum", "exclusiveMinimum")
            if isinstance(schema.get(k), int | float) and not isinstance(schema[k], bool)]
    highs = [math.ceil(schema[k]) for k in ("maximum", "exclusiveMaximum")
             if isinstance(schema.get(k), int | float) and not isinstance(schema[k], bool)]
    return (max(lows) if lows else None), (min(highs) if highs else None)


def _integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive bounds of an integer schema (``None``: unbounded on that side)."""
    lows, highs = [], []
    if isinstance(schema.get("minimum"), int | float):
        lows.append(math.ceil(schema["minimum"]))
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        lows.append(math.floor(schema["exclusiveMinimum"]) + 1)
    if isinstance(schema.get("maximum"), int | float):
        highs.append(math.floor(schema["maximum"]))
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        highs.append(math.ceil(schema["exclusiveMaximum"]) - 1)
    return (max(lows) if lows else None), (min(highs) if highs else None)


#: digits the grammar allows on an unbounded side (the converter's integer rule allows 16)
_FREE_DIGITS = 16


def _finite_range(low: int | None, high: int | None) -> tuple[int, int]:
    """A one-sided range closed where the converter's own integer rule stops."""
    def widest(bound: int | None) -> int:
        digits = len(str(abs(bound))) if bound is not None else 0
        return int(10 ** max(_FREE_DIGITS, digits)) - 1

    return (low if low is not None else -widest(high)), (high if high is not None else widest(low))


#: one way to write some of a range's integers: a sign and, per digit, its allowed span
Spelling = tuple[bool, tuple[tuple[int, int], ...]]


def integer_range_spellings(low: int, high: int) -> list[Spelling]:
    """Every integer in ``[low, high]``, in canonical JSON form (no leading zeros, no
    ``-0``), as a union of digit patterns: the classic split of a numeric range into
    same-length spans, a few patterns per digit count.

    :raises ValueError: when ``high < low``.
    """
    if high < low:
        raise ValueError(f"empty integer range [{low}, {high}]")
    out: list[Spelling] = []
    if low < 0:  # the negative part, as "-" and its absolute values
        out += [(True, d) for d in _natural_spellings(max(1, -high), -low)]
    if high >= 0:
        out += [(False, d) for d in _natural_spellings(max(0, low), high)]
    return out


def _natural_spellings(low: int, high: int) -> list[tuple[tuple[int, int], ...]]:
    """Digit patterns for ``0 <= low <= high``: one group per digit count."""
    out = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        first = 0 if digits == 1 else 10 ** (digits - 1)
        lo, hi = max(low, first), min(high, 10 ** digits - 1)
        if lo <= hi:
            out += _same_length(str(lo), str(hi))
    return out


def _same_length(low: str, high: str) -> list[tuple[tuple[int, int], ...]]:
    """Digit patterns covering exactly the numbers between two equally long numerals."""
    if not low:
        return [()]
    a, b, rest = int(low[0]), int(high[0]), len(low) - 1
    if a == b:
        return [((a, a), *tail) for tail in _same_length(low[1:], high[1:])]
    out: list[tuple[tuple[int, int], ...]] = []
    floor, ceiling = low[1:] == "0" * rest, high[1:] == "9" * rest
    if not floor:  # a followed by [low's tail, 99..9]
        out += [((a, a), *tail) for tail in _same_length(low[1:], "9" * rest)]
    start, end = (a if floor else a + 1), (b if ceiling else b - 1)
    if start <= end:  # every tail after the first digits in between
        out.append(((start, end), *((0, 9),) * rest))
    if not ceiling:  # b followed by [00..0, high's tail]
        out += [((b, b), *tail) for tail in _same_length("0" * rest, high[1:])]
    return out


def integer_range_gbnf(low: int, high: int) -> str:
    """A GBNF expression (llama.cpp grammar) matching exactly the integers in
    ``[low, high]`` written as JSON writes them.

    Runs of whole digit counts (every number of 2, 3, ... digits) are written as one
    ``[1-9] [0-9]{m,n}`` each, so a one-sided range stays a handful of alternatives.
    """
    def digit(span: tuple[int, int]) -> str:
        return f'"{span[0]}"' if span[0] == span[1] else f"[{span[0]}-{span[1]}]"

    alternatives: list[str] = []
    run: list[tuple[bool, int]] = []  # (negative, digits) of whole digit counts in a row

    def flush() -> None:
        if run:
            negative, shortest, longest = run[0][0], run[0][1], run[-1][1]
            tail = f"{{{shortest - 1},{longest - 1}}}" if longest > shortest else \
                f"{{{shortest - 1}}}"
            alternatives.append(('"-" ' if negative else "") + f"[1-9] [0-9]{tail}")
            run.clear()

    for negative, digits in integer_range_spellings(low, high):
        whole = len(digits) > 1 and digits[0] == (1, 9) and all(d == (0, 9) for d in digits[1:])
        if whole and run and run[-1] == (negative, len(digits) - 1):
            run.append((negative, len(digits)))
            continue
        flush()
        if whole:
            run.append((negative, len(digits)))
            continue
        alternatives.append(" ".join((['"-"'] if negative else []) + [digit(d) for d in digits]))
    flush()
    return "(" + " | ".join(alternatives) + ")"


def number_range_gbnf(low: int | None, high: int | None) -> str:
    """A GBNF expression matching the decimal numbers in ``[low, high]`` (integer ends;
    ``None``: unbounded on that side) written without an exponent: an integer part,
    then an optional fraction, which must be zeros at a bound (``1.0`` in ``[0, 1]``,
    never ``1.5``)."""
    frac, zeros = '("." [0-9]+)?', '("." "0"+)?'
    cap = _finite_range(None, None)[1]  # the widest integer part, as for integers
    if low is not None and low == high:
        return f"({integer_range_gbnf(low, low)} {zeros})"
    alternatives = []
    if high is None or high >= 0:  # 0 <= v <= high
        start = max(low, 0) if low is not None else 0
        below = cap if high is None else high - 1  # integer parts taking any fraction
        if start <= below:
            alternatives.append(f"{integer_range_gbnf(start, below)} {frac}")
        if high is not None:
            alternatives.append(f"{integer_range_gbnf(high, high)} {zeros}")
    if low is None or low < 0:  # low <= v < 0, or <= high when high < 0
        smallest = 0 if high is None or high >= 0 else -high
        below = cap if low is None else -low - 1
        if smallest <= below:
            alternatives.append(f'"-" {integer_range_gbnf(smallest, below)} {frac}')
        if low is not None:
            alternatives.append(f'"-" {integer_range_gbnf(-low, -low)} {zeros}')
    return "(" + " | ".join(alternatives) + ")"
