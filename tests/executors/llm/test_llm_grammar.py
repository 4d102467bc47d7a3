"""JSON Schema -> llama.cpp grammar: the grammar never admits what the schema forbids.

The regression: AGoT's ``parents`` (an array of thought numbers) came back as strings
on the local backend, because llama-cpp-python's converter widened the schema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from executors.llm._json_output import grammar_schema
from orchestrator.errors import ConfigError
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

#: a nullable list of thought numbers, as a planner might ask for it
NULLABLE_PARENTS = {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1,
                                                           "maximum": 3}}
#: AGoT's first layer: no earlier thought can be a parent
NO_PARENTS = {"type": "array", "maxItems": 0}


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
    assert grammar_schema(wide) == wide  # left to the validation after decoding
    with pytest.raises(ConfigError, match="admits no integer"):
        grammar_schema({"type": "integer", "minimum": 3, "maximum": 2})


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


def test_a_schema_the_converter_cannot_read_is_a_config_error() -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    from executors.llm.local import schema_grammar

    with pytest.raises(ConfigError, match="cannot build a grammar"):
        schema_grammar({"type": "quaternion"})


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
