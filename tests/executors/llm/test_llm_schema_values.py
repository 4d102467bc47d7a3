"""Values generated for JSON Schemas are valid under them (property test + edge cases)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from executors.llm._schema_values import value_for_schema

NAMES = st.sampled_from(["a", "b", "name", "value", "items", "id"])
SCALARS = st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from(["x", "y", "zz"]))


def _bounded_integer() -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        low = draw(st.integers(-50, 50))
        high = low + draw(st.integers(2, 40))
        schema: dict[str, Any] = {"type": "integer"}
        if draw(st.booleans()):
            schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
        if draw(st.booleans()):
            schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = high
        if draw(st.booleans()):
            schema["multipleOf"] = draw(st.sampled_from([1, 2, 5]))
            schema.pop("exclusiveMinimum", None)
            schema.pop("exclusiveMaximum", None)
            schema["minimum"], schema["maximum"] = low, high + 10
        return schema

    return build()


def _bounded_number() -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        low = draw(st.floats(-100, 100, allow_nan=False))
        high = low + draw(st.floats(0.01, 50))
        schema: dict[str, Any] = {"type": "number"}
        if draw(st.booleans()):
            schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
        if draw(st.booleans()):
            schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = high
        return schema

    return build()


def _string() -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        low = draw(st.integers(0, 30))
        if draw(st.booleans()):
            schema["minLength"] = low
        if draw(st.booleans()):
            schema["maxLength"] = low + draw(st.integers(0, 10))
        return schema

    return build()


LEAVES: st.SearchStrategy[dict[str, Any]] = st.one_of(
    _string(),
    _bounded_integer(),
    _bounded_number(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(SCALARS, min_size=1, max_size=4, unique=True).map(lambda v: {"enum": v}),
    SCALARS.map(lambda v: {"const": v}),
    st.just({"type": ["string", "null"]}),
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def array(draw: st.DrawFn) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": draw(children)}
        low = draw(st.integers(0, 3))
        if draw(st.booleans()):
            schema["minItems"] = low
        if draw(st.booleans()):
            schema["maxItems"] = low + draw(st.integers(0, 3))
        return schema

    @st.composite
    def obj(draw: st.DrawFn) -> dict[str, Any]:
        props = draw(st.dictionaries(NAMES, children, max_size=4))
        required = draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        schema: dict[str, Any] = {"type": "object", "properties": props, "required": required}
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    any_of = st.lists(children, min_size=1, max_size=3).map(lambda s: {"anyOf": s})
    return st.one_of(array(), obj(), any_of)


SCHEMAS = st.recursive(LEAVES, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=SCHEMAS, seed=st.integers(0, 2**32))
def test_generated_values_are_valid(schema: dict[str, Any], seed: int) -> None:
    value = value_for_schema(schema, random.Random(seed))
    Draft202012Validator(schema).validate(value)


@settings(max_examples=50, deadline=None)
@given(schema=SCHEMAS, seed=st.integers(0, 2**32))
def test_generation_is_deterministic(schema: dict[str, Any], seed: int) -> None:
    assert value_for_schema(schema, random.Random(seed)) == value_for_schema(
        schema, random.Random(seed)
    )


EDGE_CASES: list[dict[str, Any]] = [
    {"oneOf": [{"type": "integer"}, {"type": "number"}]},  # an integer matches both
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"const": 1}}, "required": ["b"]}]},
    {"type": "array", "items": {"enum": [1, 2, 3]}, "minItems": 3, "uniqueItems": True},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False,
     "minItems": 2},
    {"type": "object", "minProperties": 3, "additionalProperties": {"type": "integer"}},
    {"type": "object", "required": ["x"]},
    {"type": "number", "multipleOf": 0.5, "minimum": 1, "maximum": 3},
    {"type": "string", "format": "date-time"},
    {"properties": {"nested": {"items": {"type": "integer", "exclusiveMaximum": 0}}}},
    {"$defs": {"tree": {"type": "object", "properties": {
        "children": {"type": "array", "items": {"$ref": "#/$defs/tree"}}}}},
     "$ref": "#/$defs/tree"},
]


@pytest.mark.parametrize("schema", EDGE_CASES)
def test_edge_cases(schema: dict[str, Any]) -> None:
    for seed in range(20):
        Draft202012Validator(schema).validate(value_for_schema(schema, random.Random(seed)))


def test_false_schema_has_no_value() -> None:
    with pytest.raises(ValueError, match="false"):
        value_for_schema(False, random.Random(0))
