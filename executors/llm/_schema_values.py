"""Deterministic values that satisfy a JSON Schema, for the simulated engine.

Covers what output schemas use in practice: ``type`` (one or several),
``object`` (``properties``, ``required``, ``additionalProperties``,
``minProperties``), ``array`` (``items``, ``prefixItems``, ``minItems``,
``maxItems``, ``uniqueItems``), ``string`` (``minLength``, ``maxLength``, common
``format`` values), ``integer`` / ``number`` (inclusive and exclusive bounds,
``multipleOf``), ``boolean``, ``null``, ``enum``, ``const``, ``allOf``,
``anyOf``, ``oneOf`` and local ``$ref``. ``pattern`` is not generated; a schema
that needs it gets the best candidate found, which may not validate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

WORDS = (
    "alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "ember", "north",
    "quiet", "amber", "orbit", "maple", "cedar", "lumen", "pixel", "vector", "prism",
    "tidal", "fable", "harbor", "signal", "meadow", "copper", "falcon", "garnet",
    "willow", "zephyr", "kernel", "mosaic", "canyon", "beacon",
)
_ATTEMPTS = 16
_MAX_DEPTH = 8
#: nesting past which a schema is taken as one that has no finite value (a required
#: recursive ``$ref``)
_MAX_NESTING = 64
#: values (and string characters) one generated value may hold: a ``minItems`` of 10**9
#: would otherwise keep the event loop busy for good
_MAX_SIZE = 100_000
_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def words(rng: random.Random, count: int) -> str:
    """``count`` words drawn from a fixed vocabulary, space-separated."""
    return " ".join(rng.choice(WORDS) for _ in range(count))


def value_for_schema(schema: Mapping[str, Any] | bool, rng: random.Random) -> Any:
    """A value valid under ``schema``, determined by the state of ``rng``.

    Several candidates are drawn until one validates (Draft 2020-12); this covers
    combinations the direct construction misses, such as overlapping ``oneOf``.

    :param schema: a JSON Schema (object or boolean).
    :param rng: the source of every choice.
    :returns: a JSON-compatible value; valid unless the schema uses unsupported keywords.
    :raises ValueError: for the schema ``false``, which no value satisfies, and for one
        whose values are larger than 100,000 items or characters, or nested deeper than 64.
    """
    if schema is False:
        raise ValueError("the schema `false` admits no value")
    if schema is True:
        return words(rng, 2)
    validator = Draft202012Validator(schema)
    candidate: Any = None
    for _ in range(_ATTEMPTS):
        candidate = _Generator(schema, rng).value(schema, 0)
        if validator.is_valid(candidate):
            return candidate
    return candidate


class _Generator:
    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.size = 0

    def _grow(self, amount: int, what: str) -> None:
        self.size += amount
        if self.size > _MAX_SIZE:
            raise ValueError(f"{what}: a value of more than {_MAX_SIZE:,} items or "
                             "characters is more than the simulated engine writes")

    def value(self, schema: Mapping[str, Any] | bool, depth: int) -> Any:
        if depth > _MAX_NESTING:
            raise ValueError(f"the schema nests deeper than {_MAX_NESTING} levels "
                             "(a required recursive $ref?)")
        self._grow(1, "the schema")
        if schema is True or schema == {}:
            return words(self.rng, 2)
        if schema is False:
            return None
        assert isinstance(schema, Mapping)
        if "$ref" in schema:
            target = self._resolve(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.value(_merge(target, rest) if rest else target, depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(list(schema["enum"]))
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self._deref(part))
            return self.value(merged, depth + 1)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                branches = list(schema[key])
                # The first branch first: it is usually the intended shape.
                branch = branches[0] if self.rng.random() < 0.5 else self.rng.choice(branches)
                rest = {k: v for k, v in schema.items() if k != key}
                return self.value(_merge(rest, self._deref(branch)), depth + 1)
        kind = self._type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema)

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, not {ref!r}")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node  # type: ignore[no-any-return]

    def _deref(self, schema: Any) -> Mapping[str, Any]:
        if schema is True:
            return {}
        if isinstance(schema, Mapping) and "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return _merge(self._resolve(schema["$ref"]), rest)
        return schema  # type: ignore[no-any-return]

    def _type(self, schema: Mapping[str, Any]) -> str:
        declared = schema.get("type")
        if isinstance(declared, list):
            non_null = [t for t in declared if t != "null"]
            return str(self.rng.choice(non_null)) if non_null else "null"
        if isinstance(declared, str):
            return declared
        if {"properties", "required", "additionalProperties", "minProperties"} & schema.keys():
            return "object"
        if {"items", "prefixItems", "minItems", "maxItems"} & schema.keys():
            return "array"
        if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & schema.keys():
            return "number"
        return "string"

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        extra = schema.get("additionalProperties", True)
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or (depth < _MAX_DEPTH and self.rng.random() < 0.5):
                out[name] = self.value(sub, depth + 1)
        for name in required:
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, Mapping) else True, depth + 1)
        index = 0
        self._grow(max(0, schema.get("minProperties", 0) - len(out)),
                   f"minProperties {schema.get('minProperties')}")
        while len(out) < schema.get("minProperties", 0) and extra is not False:
            index += 1
            key = f"key{index}"
            if key not in out and key not in props:
                out[key] = self.value(extra if isinstance(extra, Mapping) else True, depth + 1)
        return out

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", True)
        low = max(schema.get("minItems", 0), 0 if items is not False else len(prefix))
        high = schema.get("maxItems", low + 3)
        if depth >= _MAX_DEPTH:
            high = low
        self._grow(low, f"minItems {low}")
        count = self.rng.randint(low, max(low, high))
        if items is False:
            count = min(count, len(prefix))
        out: list[Any] = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            item = self.value(sub, depth + 1)
            if schema.get("uniqueItems"):
                for _ in range(_ATTEMPTS):
                    if item not in out:
                        break
                    item = self.value(sub, depth + 1)
            out.append(item)
        return out

    def _bounds(self, schema: Mapping[str, Any], integer: bool) -> tuple[float, float]:
        step = 1.0 if integer else 1e-6
        low = -math.inf
        high = math.inf
        if "minimum" in schema:
            low = float(schema["minimum"])
        if "exclusiveMinimum" in schema:
            low = max(low, float(schema["exclusiveMinimum"]) + step)
        if "maximum" in schema:
            high = float(schema["maximum"])
        if "exclusiveMaximum" in schema:
            high = min(high, float(schema["exclusiveMaximum"]) - step)
        if math.isinf(low) and math.isinf(high):
            low, high = 0.0, 100.0
        elif math.isinf(low):
            low = high - 100.0
        elif math.isinf(high):
            high = low + 100.0
        return low, max(low, high)

    def _integer(self, schema: Mapping[str, Any]) -> int:
        low, high = self._bounds(schema, integer=True)
        lo, hi = math.ceil(low), math.floor(high)
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) and multiple > 0:
            first, last = math.ceil(lo / multiple), math.floor(hi / multiple)
            return self.rng.randint(first, max(first, last)) * multiple
        return self.rng.randint(lo, max(lo, hi))

    def _number(self, schema: Mapping[str, Any]) -> float | int:
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int) or (isinstance(multiple, float) and multiple.is_integer()):
            return self._integer(schema)
        low, high = self._bounds(schema, integer=False)
        if isinstance(multiple, float) and multiple > 0:
            first, last = math.ceil(low / multiple), math.floor(high / multiple)
            ks = list(range(first, max(first, last) + 1))[:64]
            self.rng.shuffle(ks)
            for k in ks:
                value = round(k * multiple, 12)
                # The validator divides floats: keep a multiple whose quotient is exact.
                if value / multiple == int(value / multiple) and low <= value <= high:
                    return value
            return first * multiple
        # Stay inside the open interval: exclusive bounds are then respected too.
        value = low + (high - low) * self.rng.uniform(0.25, 0.75)
        rounded = round(value, 3)
        return rounded if low <= rounded <= high else value

    def _string(self, schema: Mapping[str, Any]) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt]
        low = int(schema.get("minLength", 0))
        high = int(schema.get("maxLength", max(low, 24)))
        self._grow(low, f"minLength {low}")
        text = words(self.rng, self.rng.randint(1, 4))
        while len(text) < low:
            text += " " + words(self.rng, 1)
        target = self.rng.randint(low, max(low, min(high, len(text))))
        return text[:target]


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Combine two schemas (as for ``allOf``): properties merged, requirements united."""
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and key in out:
            out[key] = {**out[key], **value}
        elif key == "required" and key in out:
            out[key] = list(dict.fromkeys([*out[key], *value]))
        else:
            out[key] = value
    return out
