"""pydantic's wording is made a YAML user's: a section entry that is not a mapping named
pydantic's class ("a valid dictionary or instance of InputSpec") and had no hint; a
validator's message began "Value error, " and echoed the value it had named already."""

from __future__ import annotations

import pytest

from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_text
from orchestrator.spec.loader import load_yaml

HEAD = "name: w\nmodels:\n  default: {backend: simulated}\n"
STEP = "steps:\n  - {id: a, kind: llm, prompt: hi}\n"


@pytest.mark.parametrize(("text", "at", "message", "hint"), [
    (HEAD + "steps:\n  -\n  - {id: a, kind: llm, prompt: hi}\n", (5, 4),
     "steps.0: must be a mapping of fields (got null)",
     "a step is a mapping: `- id: NAME`, then `kind:` and its other fields on the lines "
     "below, indented as `id:`"),
    ("name: w\ninputs:\n  q: string\n" + STEP, (3, 3),
     "inputs.q: must be a mapping of fields (got 'string')",
     "an input is a mapping of its fields, e.g. `NAME: {type: string}`"),
    ("name: w\nmodels:\n  default: simulated\n" + STEP, (3, 3),
     "models.default: must be a mapping of fields (got 'simulated')",
     "a model is a mapping of its fields, e.g. `ALIAS: {backend: simulated}`"),
    (HEAD + "defaults: 5\n" + STEP, (4, 1), "defaults: must be a mapping of fields (got 5)",
     "give its fields as `key: value` lines or `{key: value}`"),
    # a section written as a list of names: "tools: Input should be a valid dictionary"
    ("name: w\ninputs: [q]\n" + STEP, (2, 1), "`inputs:` must be a mapping (got [\"q\"])",
     "name each input with its fields: `inputs: {q: {type: string}}`"),
    ("name: w\nmodels: [default]\n" + STEP, (2, 1),
     "`models:` must be a mapping (got [\"default\"])",
     "name each model alias with its config: `models: {default: {backend: local}}`"),
    (HEAD + "outputs: [a]\n" + STEP, (4, 1), "`outputs:` must be a mapping (got [\"a\"])",
     "name each output with its value: `outputs: {answer: ${steps.ID.output}}`"),
    (HEAD + "tools: [mytools.py]\n" + STEP, (4, 1),
     "`tools:` must be a mapping (got [\"mytools.py\"])",
     "name each tool with its function: `tools: {lookup: mytools:lookup}` (the module "
     "beside the workflow file)"),
    (HEAD + "steps:\n  - {id: s, kind: sample, prompt: hi}\n"
     "  - {id: j, kind: join, of: s, reducer: vote, extract: '(x'}\n", (6, 47),
     "steps.1.extract: extract '(x' is not a regular expression: missing ) at position 2",
     ""),
    (HEAD + "steps:\n  - {id: s, kind: sample, prompt: hi}\n"
     "  - {id: j, kind: join, of: s, reducer: best_of_n}\n", (6, 5),
     "steps.1: reducer best_of_n needs a `scorer` ({tool: ...}, {llm: ...} or "
     "{endpoint: ..., model: ...})", ""),
])
def test_a_value_of_the_wrong_shape_is_named_in_yaml_terms(
        text: str, at: tuple[int, int], message: str, hint: str) -> None:
    problems = validate_text(text, "w.yaml")
    assert [((p.line, p.column), p.message, p.hint) for p in problems] == [
        (at, message, hint)]
    with pytest.raises(ValidationFailed) as info:  # as `ponder run` loads it: same words
        load_yaml("w.yaml", text=text)
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "line", "message", "hint"), [
    ("name:\n" + STEP, 1, "name: Input should be a valid string (got null)",
     "`name:` has no value (YAML reads nothing as null): write one"),
    (HEAD + "steps:\n  - id: a\n    kind: llm\n    prompt:\n", 7,
     "steps.0.prompt: Input should be a valid string (got null)",
     "`prompt:` has no value (YAML reads nothing as null): write one"),
])
def test_a_key_without_a_value_says_so(text: str, line: int, message: str, hint: str) -> None:
    assert [(p.line, p.message, p.hint) for p in validate_text(text, "w.yaml")] == [
        (line, message, hint)]


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"),
    ("\n  \n", "the file is empty"),
    ("---\n", "the file is empty"),
    ("# a workflow, one day\n\n  # more\n", "the file is empty (it holds only comments)"),
])
def test_a_file_without_a_value_is_empty(text: str, message: str) -> None:
    assert [p.message for p in validate_text(text, "w.yaml")] == [message]


def test_a_check_across_fields_is_located_at_the_field_it_names() -> None:
    """It was located at the step's first line, away from the field to change."""
    text = HEAD + """\
steps:
  - {id: s, kind: sample, prompt: hi}
  - id: j
    kind: join
    of: s
    reducer: vote
    scorer: {tool: calc}
"""
    assert [(p.line, p.message) for p in validate_text(text, "w.yaml")] == [
        (10, "steps.1: `scorer` is used by best_of_n only, not vote")]
