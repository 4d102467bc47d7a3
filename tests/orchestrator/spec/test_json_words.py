"""A message that shows a value read from YAML or JSON shows it in their words: ``null``,
``true``, ``{"a": 1}``. It showed Python's: "input 'opt' must be integer, got None",
"got True", and a map's `over` "got an object {'a': 1}"."""

from __future__ import annotations

import pytest

from orchestrator.graph.validate import validate_text
from orchestrator.spec.models import InputSpec, shown_json


@pytest.mark.parametrize(("value", "words"), [
    (None, "null"), (True, "true"), (False, "false"), ({"a": None}, '{"a": null}'),
    ([1, "b"], '[1, "b"]'), (1.5, "1.5"), ("text", "'text'"), (object, repr(object)),
])
def test_a_value_is_shown_in_json_words(value: object, words: str) -> None:
    assert shown_json(value) == words


def test_a_long_value_is_cut_as_shown_cuts_it() -> None:
    words = shown_json(list(range(50_000)))
    assert words.startswith("[0, 1, 2, ") and words.endswith(" characters)")
    assert len(words) < 100


@pytest.mark.parametrize(("value", "words"), [(None, "null"), (True, "true"),
                                              ({"a": 1}, '{"a": 1}')])
def test_an_input_of_another_type_is_named_in_json_words(value: object, words: str) -> None:
    with pytest.raises(ValueError) as info:
        InputSpec(type="integer", default=5).accept("n", value)
    assert str(info.value) == f"input 'n' must be integer, got {words}"


def test_a_yaml_value_is_named_in_json_words_at_its_line() -> None:
    problems = validate_text("name: x\ninputs:\n  n: {type: integer, default: true}\n"
                             "steps:\n  - id: m\n    kind: map\n    over: {a: 1}\n"
                             "    step: {kind: tool, tool: calc, args: {expression: '1'}}\n",
                             "x.yaml")
    said = {(p.line, p.message) for p in problems}
    assert (3, "the default of input 'n' must be integer, got true") in said
    assert any(line == 7 and 'got an object {"a": 1}' in message for line, message in said)
