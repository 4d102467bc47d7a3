"""JSON Schema -> llama.cpp grammar: the grammar never admits what the schema forbids.

The regression: AGoT's ``parents`` (an array of thought numbers) came back as strings
on the local backend, because llama-cpp-python's converter widened the schema.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from executors.llm._json_output import (
    grammar_schema,
    integer_range_gbnf,
    integer_range_spellings,
    number_range_gbnf,
)
from orchestrator.errors import ConfigError
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

#: a nullable list of thought numbers, as a planner might ask for it
NULLABLE_PARENTS = {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1,
                                                           "maximum": 3}}
#: AGoT's first layer: no earlier thought can be a parent
NO_PARENTS = {"type": "array", "maxItems": 0}
#: integer ranges too wide to list as an enum, one of them one-sided
YEAR_AND_COUNT = {"type": "object", "properties": {
    "year": {"type": "integer", "minimum": 1000, "maximum": 5000},
    "count": {"type": "integer", "minimum": 0}}, "required": ["year", "count"],
    "additionalProperties": False}


def wrap(parents: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"parents": parents}, "required": ["parents"],
            "additionalProperties": False}


# -- the schema rewrite (pure) --------------------------------------------------------
def test_a_type_list_keeps_the_other_keywords_in_each_branch() -> None:
    out = grammar_schema(NULLABLE_PARENTS)
    assert out == {"anyOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 3,
                                    "enum": [1, 2, 3]}},
        {"type": "null", "items": {"type": "integer", "minimum": 1, "maximum": 3,
                                   "enum": [1, 2, 3]}}]}


def test_an_empty_array_gets_an_item_schema() -> None:
    assert grammar_schema(NO_PARENTS) == {"type": "array", "maxItems": 0,
                                          "items": {"type": "null"}}


def test_small_integer_ranges_become_enums() -> None:
    assert grammar_schema({"type": "integer", "exclusiveMinimum": 0, "maximum": 4,
                           "multipleOf": 2})["enum"] == [2, 4]
    wide = {"type": "integer", "minimum": 0, "maximum": 10_000}
    assert grammar_schema(wide) == wide  # no collector: left to the validation after decoding
    with pytest.raises(ConfigError, match="admits no integer"):
        grammar_schema({"type": "integer", "minimum": 3, "maximum": 2})


def test_wide_one_sided_and_number_ranges_are_collected_for_the_grammar() -> None:
    ranges: list[tuple[str, str]] = []
    out = grammar_schema({"type": "object", "properties": {
        "year": {"type": "integer", "minimum": 1000, "exclusiveMaximum": 3000},
        "count": {"type": ["integer", "null"], "minimum": 0},
        "small": {"type": "integer", "minimum": 1, "maximum": 3},
        "free": {"type": "integer"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "real": {"type": "number"}}}, ranges)
    assert [rule for _, rule in ranges] == [integer_range_gbnf(1000, 2999),
                                            integer_range_gbnf(0, 10 ** 16 - 1),
                                            number_range_gbnf(0, 1)]
    assert out["properties"]["year"] == {"const": ranges[0][0]}
    assert out["properties"]["count"]["anyOf"][0] == {"const": ranges[1][0]}
    assert out["properties"]["score"] == {"const": ranges[2][0]}
    assert out["properties"]["small"]["enum"] == [1, 2, 3]
    assert out["properties"]["free"] == {"type": "integer"}
    assert out["properties"]["real"] == {"type": "number"}
    ranges.clear()
    grammar_schema({"type": "integer", "maximum": -5}, ranges)
    assert ranges[0][1] == integer_range_gbnf(-(10 ** 16 - 1), -5)
    ranges.clear()  # fractional and exclusive bounds: the integer hull around them
    grammar_schema({"type": "number", "exclusiveMinimum": -0.5, "maximum": 2.5}, ranges)
    assert ranges[0][1] == number_range_gbnf(-1, 3)
    with pytest.raises(ConfigError, match="admits no number"):
        grammar_schema({"type": "number", "minimum": 3, "maximum": 1}, ranges)


def _regex(low: int, high: int) -> re.Pattern[str]:
    """The spellings of [low, high] as one regular expression, to test them exactly."""
    def digit(span: tuple[int, int]) -> str:
        return str(span[0]) if span[0] == span[1] else f"[{span[0]}-{span[1]}]"

    return re.compile("|".join(("-" if negative else "") + "".join(map(digit, digits))
                               for negative, digits in integer_range_spellings(low, high)))


@pytest.mark.parametrize("low,high", [
    (0, 0), (0, 9), (7, 7), (1, 1000), (-1, 1), (-300, -7), (-999, 1000), (13, 987),
    (100, 199), (1009, 19990), (-10_000, -10_000), (99, 101), (5, 123_456)])
def test_integer_range_spellings_match_exactly_the_range(low: int, high: int) -> None:
    pattern = _regex(low, high)
    window = range(low - 1_500, high + 1_500)
    probes = set(window) if high - low < 20_000 else set(window[:3_000]) | set(window[-3_000:])
    probes |= set(random.Random(low ^ high).sample(range(low, high + 1), min(500, high - low)))
    for n in probes:
        assert bool(pattern.fullmatch(str(n))) == (low <= n <= high), n
    for wrong in ("-0", "007", "00", "+5", "", "-"):  # never a non-canonical numeral
        assert not pattern.fullmatch(wrong), wrong
    with pytest.raises(ValueError, match="empty integer range"):
        integer_range_spellings(high + 1, high)


def test_the_integer_rule_is_a_small_union() -> None:
    assert integer_range_gbnf(1000, 5000) == '([1-4] [0-9] [0-9] [0-9] | "5" "0" "0" "0")'
    assert len(integer_range_spellings(-10 ** 16 + 1, 10 ** 16 - 1)) == 32
    # whole digit counts in a row become one repetition: one-sided ranges stay small
    assert integer_range_gbnf(0, 10 ** 16 - 1) == "([0-9] | [1-9] [0-9]{1,15})"
    assert integer_range_gbnf(-(10 ** 16 - 1), -5) == '("-" [5-9] | "-" [1-9] [0-9]{1,15})'


@pytest.mark.parametrize("low,high", [
    (0, 10 ** 16 - 1), (4, 10 ** 16 - 1), (-(10 ** 16 - 1), -5), (-50, 10 ** 6),
    (1900, 2_100_000), (10, 99), (-999, 1000), (7, 7)])
def test_the_gbnf_rule_matches_the_same_integers_as_the_spellings(low: int, high: int
                                                                  ) -> None:
    # our GBNF subset reads as a regular expression once quotes and spaces are dropped
    pattern = re.compile(integer_range_gbnf(low, high).replace('"', "").replace(" ", ""))
    exact = _regex(low, high)
    rng = random.Random(low ^ high)
    probes = {low, high, low - 1, high + 1, 0, -1, 1}
    probes |= {rng.randint(low - 10 ** 6, high + 10 ** 6) for _ in range(3_000)}
    probes |= {int("9" * d) for d in range(1, 18)} | {10 ** d for d in range(17)}
    for n in probes:
        assert bool(pattern.fullmatch(str(n))) == bool(exact.fullmatch(str(n))) \
            == (low <= n <= high), n


def _gbnf_regex(rule: str) -> re.Pattern[str]:
    """Our GBNF subset as a regular expression: quotes and spaces dropped, "." escaped."""
    return re.compile(rule.replace('"."', r"\.").replace('"', "").replace(" ", ""))


@pytest.mark.parametrize("low,high", [
    (0, 1), (-1, 1), (-5, -2), (0, None), (None, 0), (None, -3), (2, None), (3, 3),
    (-100, 250)])
def test_number_rules_match_exactly_the_decimals_in_range(low: int | None,
                                                          high: int | None) -> None:
    from decimal import Decimal

    pattern = _gbnf_regex(number_range_gbnf(low, high))
    rng = random.Random(7)
    centre = [v for v in (low, high) if v is not None]
    numerals = {"0", "-0", "0.0", "-0.0", "1.5", "-1.5", "0.25"}
    for base in [*centre, 0]:
        for _ in range(400):
            whole = base + rng.randint(-4, 4)
            fraction = rng.choice(["", ".0", ".00", ".5", ".25", ".999", ".001"])
            numerals.add(f"{whole}{fraction}")
    for text in numerals:
        value = Decimal(text)
        if value == 0 and text.startswith("-"):  # "-0": in range, the grammar may omit it
            assert not pattern.fullmatch(text) or (low is None or low <= 0), text
            continue
        inside = (low is None or value >= low) and (high is None or value <= high)
        assert bool(pattern.fullmatch(text)) == inside, (text, low, high)
    for wrong in ("01", "1.", ".5", "1e3", "+1", "--1", "- 1"):
        assert not pattern.fullmatch(wrong), wrong


def test_any_value_is_spelled_out_and_the_input_is_not_modified() -> None:
    schema = {"type": "object", "properties": {"x": {}}, "additionalProperties": True}
    before = json.dumps(schema)
    out = grammar_schema(schema)
    assert json.dumps(schema) == before
    assert [b["type"] for b in out["properties"]["x"]["anyOf"]] == [
        "object", "array", "string", "number", "boolean", "null"]
    assert out["additionalProperties"] == out["properties"]["x"]
    assert grammar_schema({"type": "object", "additionalProperties": False}) == {
        "type": "object", "additionalProperties": False}


def test_subschemas_are_rewritten_everywhere() -> None:
    schema = {"$defs": {"n": {"type": ["integer"], "minimum": 1, "maximum": 2}},
              "anyOf": [{"$ref": "#/$defs/n"}, {"type": "array", "prefixItems": [{}]}]}
    out = grammar_schema(schema)
    assert out["$defs"]["n"] == {"type": "integer", "minimum": 1, "maximum": 2,
                                 "enum": [1, 2]}
    assert "anyOf" in out["anyOf"][1]["prefixItems"][0]


# -- the grammar llama.cpp gets (no decoding) ------------------------------------------
_RULE = re.compile(r"^([A-Za-z0-9-]+) ::= (.*)$", re.MULTILINE)
_LITERALS = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]')


def reachable_rules(gbnf: str, start: str = "root") -> set[str]:
    """Names of the rules a GBNF grammar can reach from ``start``."""
    rules = {m.group(1): _LITERALS.sub(" ", m.group(2)) for m in _RULE.finditer(gbnf)}
    seen, stack = set(), [start]
    while stack:
        name = stack.pop()
        if name in seen or name not in rules:
            continue
        seen.add(name)
        stack.extend(re.findall(r"[A-Za-z][A-Za-z0-9-]*", rules[name]))
    return seen


@pytest.mark.parametrize("parents", [NULLABLE_PARENTS, NO_PARENTS], ids=["nullable", "empty"])
def test_the_grammar_admits_no_string_where_the_schema_has_none(parents: dict[str, Any]
                                                                ) -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm.local import schema_grammar

    gbnf = schema_grammar(wrap(parents))._grammar
    reached = reachable_rules(gbnf)
    assert "parents-kv" in reached or any(r.startswith("parents") for r in reached)
    assert not reached & {"string", "char", "value", "object"}, gbnf


def test_the_grammar_bounds_wide_integer_ranges() -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm.local import schema_grammar

    gbnf = schema_grammar(YEAR_AND_COUNT)._grammar
    assert "year ::= ([1-4] [0-9] [0-9] [0-9] | \"5\" \"0\" \"0\" \"0\")" in gbnf, gbnf
    assert "ponder-integer-range" not in gbnf
    assert not reachable_rules(gbnf) & {"integer", "integral-part"}, gbnf


def _thought_schema(max_chars: int) -> dict[str, Any]:
    """AGoT's layer schema, whose strings are bounded by ``max_chars``."""
    from planners.agot import layer_request

    schema = layer_request("q", [], "", 1, 3, 3, [], max_tokens=64, temperature=0.0,
                           max_chars=max_chars).json_schema
    assert schema is not None
    return schema


def test_the_grammar_bounds_strings_by_max_length() -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm.local import schema_grammar

    schema = _thought_schema(30)
    # the schema sent to llama.cpp's server (structured_outputs: json_object) keeps them
    rewritten = grammar_schema(schema)
    assert rewritten["properties"]["strategy"]["maxLength"] == 30
    assert rewritten["properties"]["thoughts"]["items"]["properties"]["thought"][
        "maxLength"] == 30
    rules = {m.group(1): m.group(2) for m in _RULE.finditer(schema_grammar(schema)._grammar)}
    for name in ("strategy", "thoughts-item-thought"):
        body = _LITERALS.sub(" ", rules[name])
        # the string's characters: 30 optional ones at most, then the quote and a space
        assert re.findall(r"[a-z-]+", body) == ["char"] * 30 + ["space"], body
        assert "*" not in body and "+" not in body, body
    assert not reachable_rules(schema_grammar(schema)._grammar) & {"string"}


def test_a_schema_the_converter_cannot_read_is_a_config_error() -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm.local import schema_grammar

    with pytest.raises(ConfigError, match="cannot build a grammar"):
        schema_grammar({"type": "quaternion"})


def test_a_valid_schema_the_grammar_cannot_express_is_one_plain_line() -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm.local import schema_grammar

    with pytest.raises(ConfigError) as info:
        schema_grammar({"not": {"type": "string"}})
    assert str(info.value) == ("local backend: cannot build a grammar for the JSON schema "
                               '{"not": {"type": "string"}}: Unrecognized schema: '
                               "{'not': {'type': 'string'}}")  # without 'AssertionError: '


# -- decoding on the bundled model -----------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("parents", [NULLABLE_PARENTS, NO_PARENTS], ids=["nullable", "empty"])
async def test_the_model_cannot_write_strings_into_parents(gguf_path: Path,
                                                           parents: dict[str, Any]) -> None:
    from executors.llm import LocalBackend

    schema = wrap(parents)
    backend = LocalBackend(ModelConfig(backend="local", options={"n_threads": 1}))
    # the prompt pulls towards strings: unconstrained, the model copies them
    response = await backend.complete(LLMRequest(
        messages=[{"role": "user", "content": 'Copy this JSON exactly: {"parents": ["T1", "T2"]}'}],
        max_tokens=30, temperature=0, json_schema=schema))
    await backend.aclose()
    Draft202012Validator(schema).validate(json.loads(response.text))


SCORE_AND_DELTA = {"type": "object", "properties": {
    "score": {"type": "number", "minimum": 0, "maximum": 1},
    "delta": {"type": "number", "maximum": -2}}, "required": ["score", "delta"],
    "additionalProperties": False}


@pytest.mark.anyio
@pytest.mark.parametrize("schema,copy", [
    (YEAR_AND_COUNT, '{"year": 7200, "count": -40}'),
    (SCORE_AND_DELTA, '{"score": 7.5, "delta": 3.25}'),
], ids=["integers", "numbers"])
async def test_the_model_cannot_write_numbers_out_of_range(gguf_path: Path,
                                                           schema: dict[str, Any],
                                                           copy: str) -> None:
    from executors.llm import LocalBackend

    backend = LocalBackend(ModelConfig(backend="local", options={"n_threads": 1}))
    # the prompt pulls out of every range: unconstrained, the model copies it as it is
    response = await backend.complete(LLMRequest(
        messages=[{"role": "user", "content": f"Copy this JSON exactly: {copy}"}],
        max_tokens=30, temperature=0, json_schema=schema))
    await backend.aclose()
    Draft202012Validator(schema).validate(json.loads(response.text))


@pytest.mark.anyio
async def test_the_model_cannot_write_a_string_past_max_length(gguf_path: Path) -> None:
    from executors.llm import LocalBackend

    schema = _thought_schema(40)
    backend = LocalBackend(ModelConfig(backend="local", options={"n_threads": 1}))
    # the prompt pulls towards a long thought: unconstrained, the model copies all of it
    long = "the quick brown fox jumps over the lazy dog " * 6
    copy = json.dumps({"thoughts": [{"thought": long}]})
    response = await backend.complete(LLMRequest(
        messages=[{"role": "user", "content": f"Copy this JSON exactly: {copy}"}],
        max_tokens=80, temperature=0, json_schema=schema))
    await backend.aclose()
    assert response.finish_reason == "stop", response.text  # closed, not cut at max_tokens
    Draft202012Validator(schema).validate(json.loads(response.text))
