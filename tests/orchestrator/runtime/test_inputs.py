"""Inputs checked before a run: a bad value is named in a one-line message, however long."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import SpecError, shown
from orchestrator.runtime.engine import validate_inputs

SPEC = Workflow.from_yaml_text("""\
name: t
inputs:
  n: {type: integer}
  word: {type: string, default: x, schema: {maxLength: 3}}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: '${inputs.n}'}}
""").spec

HUGE = "a" * 100_000


def _message(given: dict[str, object]) -> str:
    with pytest.raises(SpecError) as info:
        validate_inputs(SPEC, given)
    return str(info.value)


def test_a_short_value_is_echoed_whole() -> None:
    assert _message({"n": "many"}) == "input 'n' must be integer, got 'many'"
    assert _message({"n": 1, "x": 2}) == "unknown input 'x' (declared: n, word)"


def test_a_huge_value_is_echoed_by_its_start_and_length() -> None:
    # it was echoed whole: a 100 KB message
    start = repr("a" * 60)
    assert _message({"n": HUGE}) == (
        f"input 'n' must be integer, got {start}... (100000 characters)")
    assert _message({"n": 1, HUGE: 2}) == (
        f"unknown input {start}... (100000 characters) (declared: n, word)")


def test_a_huge_value_of_another_type_is_cut_too() -> None:
    message = _message({"n": list(range(50_000))})
    assert message.startswith("input 'n' must be integer, got [0, 1, 2, ")
    assert message.endswith(f"... ({len(repr(list(range(50_000))))} characters)")
    assert len(message) < 200


def test_a_schema_message_echoes_a_huge_value_by_its_start() -> None:
    assert _message({"n": 1, "word": "abcd"}) == "input 'word': 'abcd' is too long"
    message = _message({"n": 1, "word": HUGE})
    assert message == f"input 'word': {shown(HUGE)} is too long"
    assert len(message) < 200


def test_shown_keeps_short_values_as_their_repr() -> None:
    assert shown("it's") == repr("it's")
    assert shown(3) == "3"
    assert shown("b" * 60) == repr("b" * 60)
    assert shown("b" * 61) == f"{'b' * 60!r}... (61 characters)"
    assert shown("é" * 61, limit=2) == "'éé'... (61 characters)"


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_a_number_input_refuses_what_json_has_no_number_for(text: str) -> None:
    spec = Workflow.from_yaml_text("""\
name: t
inputs:
  f: {type: number}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: '${inputs.f}'}}
""").spec
    with pytest.raises(SpecError) as info:
        validate_inputs(spec, {"f": text})  # as --input f=NaN gives it
    assert str(info.value) == f"input 'f' must be number, got {text!r}"
    with pytest.raises(SpecError):
        validate_inputs(spec, {"f": float(text)})  # as --inputs-json or Python give it
