"""Finding and validating the JSON value in a model's answer."""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from orchestrator.errors import ConfigError

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_OPENERS = re.compile(r"[\[{]")


def extract_json(text: str) -> Any:
    """The JSON value an answer holds.

    Tried in order: the content of the first Markdown code fence, the whole text,
    then the first ``{`` or ``[`` from which a complete JSON value decodes.

    :param text: the model's raw answer.
    :returns: the decoded value.
    :raises ValueError: when the text holds no JSON value.
    """
    stripped = text.strip()
    candidates = []
    fenced = _FENCE.search(stripped)
    if fenced:
        candidates.append(fenced.group(1).strip())
    candidates.append(stripped)
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    for source in candidates:
        for opener in _OPENERS.finditer(source):
            try:
                value, _ = decoder.raw_decode(source, opener.start())
            except json.JSONDecodeError:
                continue
            return value
    raise ValueError("the answer holds no JSON value")


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator:
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problem(value: Any, schema: dict[str, Any]) -> str | None:
    """Check a value against a JSON Schema (Draft 2020-12).

    :returns: ``None`` when valid, else the most relevant error, located by JSON path.
    :raises ConfigError: when ``schema`` is not a valid JSON Schema.
    """
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as exc:
        raise ConfigError(f"output_schema is not a valid JSON Schema: {exc.message}") from None
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return f"at {error.json_path}: {error.message}"


_ANY_TYPES = ("object", "array", "string", "number", "boolean", "null")
#: integer ranges up to this size are spelled out as an ``enum`` (an exact grammar)
_MAX_ENUM_RANGE = 256
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains")


def grammar_schema(schema: Any) -> Any:
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
    - integer bounds are ignored: a bounded range of at most 256 integers becomes an
      ``enum``; wider bounds stay unenforced by the grammar (the answer is still
      validated after decoding).

    :param schema: a JSON Schema (not modified).
    :returns: an equivalent schema for the converter.
    """
    if schema is True or schema == {}:
        return {"anyOf": [{"type": t} for t in _ANY_TYPES]}
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: grammar_schema(v) for k, v in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [grammar_schema(v) for v in value]
        elif key in _SUBSCHEMA_ONE and (isinstance(value, dict) or value is True):
            out[key] = grammar_schema(value)
        else:
            out[key] = value
    types = out.get("type")
    if isinstance(types, list):
        unique = list(dict.fromkeys(types))
        if len(unique) == 1:
            out["type"] = unique[0]
        else:
            rest = {k: v for k, v in out.items() if k != "type"}
            return {"anyOf": [grammar_schema({**rest, "type": t}) for t in unique]}
    kind = out.get("type")
    if kind in (None, "array") and "items" not in out and "prefixItems" not in out \
            and out.get("maxItems") == 0:
        out["items"] = {"type": "null"}  # never written: at most 0 items
    if kind == "integer" and "enum" not in out and "const" not in out:
        bounds = _integer_bounds(out)
        if bounds is not None:
            low, high = bounds
            if high < low:
                raise ConfigError(f"the schema {json.dumps(schema)[:80]} admits no integer")
            step = out.get("multipleOf")
            out["enum"] = [n for n in range(low, high + 1)
                           if not isinstance(step, int) or step <= 0 or n % step == 0]
    return out


def _integer_bounds(schema: dict[str, Any]) -> tuple[int, int] | None:
    """The inclusive range of a bounded integer schema, when small enough to list."""
    lows, highs = [], []
    if isinstance(schema.get("minimum"), int | float):
        lows.append(math.ceil(schema["minimum"]))
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        lows.append(math.floor(schema["exclusiveMinimum"]) + 1)
    if isinstance(schema.get("maximum"), int | float):
        highs.append(math.floor(schema["maximum"]))
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        highs.append(math.ceil(schema["exclusiveMaximum"]) - 1)
    if not lows or not highs:
        return None
    low, high = max(lows), min(highs)
    if high - low >= _MAX_ENUM_RANGE:
        return None
    return low, high
