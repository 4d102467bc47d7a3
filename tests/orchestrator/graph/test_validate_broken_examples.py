"""`ponder validate` on broken variants of examples/quickstart.yaml: each problem is named
at the line that holds it, with what was given and, where a name is close to a known
one, that name. A step whose id was not a string was dropped from the checked steps, so
every later step's problems were located at the step before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.graph.validate import validate_text

QUICKSTART = (Path(__file__).parents[3] / "examples" / "quickstart.yaml").read_text(
    encoding="utf-8")


def _problems(old: str, new: str) -> list[tuple[str, str, str]]:
    """(the line a problem names, its message, its hint) of the quickstart changed."""
    assert QUICKSTART.count(old) >= 1, old
    text = QUICKSTART.replace(old, new, 1)
    lines = text.splitlines()
    return [(lines[p.line - 1].strip(), p.message, p.hint)
            for p in validate_text(text, "quickstart.yaml")]


def test_a_step_without_kind_is_named_so() -> None:
    ((line, message, hint),) = _problems("    kind: tool\n", "")
    assert (line, message) == ("- id: total_legs", "steps.3: a step needs a `kind:`")
    assert hint.startswith("add `kind:` with one of: llm, tool")


def test_a_misspelt_kind_names_the_kind_meant() -> None:
    ((line, message, hint),) = _problems("kind: tool", "kind: tools")
    assert (line, message) == ("- id: total_legs", "unknown step kind 'tools'")
    assert hint.startswith("did you mean 'tool'? Else use one of:")


@pytest.mark.parametrize(("old", "new", "at", "message", "hint"), [
    ("type: integer, default: 3", "type: int, default: 3", "spiders: {type: int",
     "inputs.spiders.type: Input should be 'string', 'integer', 'number', 'boolean', 'array',"
     " 'object' or 'any' (got 'int')", "did you mean 'integer'?"),
    ("max_tokens: 40", "max_tokens: forty", "max_tokens: forty",
     "steps.0.max_tokens: Input should be a valid integer, unable to parse string as an "
     "integer (got 'forty')", ""),
    ("max_tokens: 48", "max_tokens: 48\n    temperature: 5", "temperature: 5",
     "steps.2.temperature: Input should be less than or equal to 2 (got 5)", ""),
])
def test_a_value_of_the_wrong_type_or_range_is_echoed(old: str, new: str, at: str,
                                                     message: str, hint: str) -> None:
    ((line, got, got_hint),) = _problems(old, new)
    assert (line.startswith(at), got, got_hint) == (True, message, hint)


def test_a_step_whose_id_is_not_a_string_leaves_the_others_located() -> None:
    found = _problems("id: why_count", "id: 12")
    assert found[0][:2] == ("- id: 12", "steps.2.id: Input should be a valid string (got 12)")
    # the reference to the old id is in `answer`'s prompt, not at `total_legs` above it
    (line, message, _), = found[1:]
    assert line.startswith("Background: {{ steps.spider_fact.output }}")
    assert message == "unknown step 'why_count' in `steps.why_count.output`"


@pytest.mark.parametrize(("old", "new", "at", "message"), [
    ("id: ant_fact", "id: spider_fact", "- id: spider_fact", "duplicate step id 'spider_fact'"),
    ("  - id: spider_fact\n    kind: llm\n", "  - id: spider_fact\n    kind: llm\n"
     "    after: [answer]\n", "- id: spider_fact", "cycle: spider_fact -> answer -> spider_fact"),
    ("steps.total_legs.output }}", "steps.total_leg.output }}", "Exact count:",
     "unknown step 'total_leg' in `steps.total_leg.output`"),
    ("${inputs.spiders} * 8", "${inputs.spider} * 8", "expression:",
     "unknown input 'spider' in `${inputs.spider}`"),
    ("expression:", "expr:", "expr:", "tool 'calc' has no argument 'expr'"),
])
def test_graph_problems_are_at_their_lines(old: str, new: str, at: str, message: str) -> None:
    found = _problems(old, new)
    assert any(line.startswith(at) and got == message for line, got, _ in found), found


EXAMPLES = Path(__file__).parents[3] / "examples"


def test_a_misspelt_item_in_a_map_body_names_the_item() -> None:
    text = (EXAMPLES / "map_fanout.yaml").read_text(encoding="utf-8").replace(
        "{{ item }}", "{{ itm }}")
    (problem,) = validate_text(text, "map_fanout.yaml")
    assert (problem.message, problem.hint) == ("unknown name 'itm' in `itm`",
                                               "did you mean 'item'?")
    assert "{{ itm }}" in text.splitlines()[problem.line - 1]


def test_a_reference_is_shown_as_written_with_its_output() -> None:
    text = (EXAMPLES / "branch.yaml").read_text(encoding="utf-8").replace(
        "Answer in two sentences: {{ inputs.question }}",
        "Answer in two sentences: {{ steps.explain.output.text }}")
    (problem,) = validate_text(text, "branch.yaml")
    assert problem.message == ("step 'explain' refers to itself in "
                               "`steps.explain.output.text`")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("max_tokens: 40", "max_tokens: true", "steps.0.max_tokens: a number, not `true`"),
    ("max_tokens: 48", "max_tokens: 48\n    temperature: yes",
     "steps.2.temperature: a number, not `true`"),
])
def test_a_boolean_where_a_number_belongs_is_refused_at_its_line(old: str, new: str,
                                                                message: str) -> None:
    """pydantic took `max_tokens: true` as 1 (and `yes`, which YAML reads as true): the
    run went on with a value nobody wrote. validate and run now refuse it."""
    from orchestrator.errors import ValidationFailed
    from orchestrator.spec.loader import load_yaml

    ((line, got, hint),) = _problems(old, new)
    assert got.startswith(message) and hint == "write a number"
    assert line == new.rsplit("\n", 1)[-1].strip()
    with pytest.raises(ValidationFailed) as run_error:  # as `ponder run` loads it
        load_yaml("quickstart.yaml", text=QUICKSTART.replace(old, new, 1))
    assert [p.message for p in run_error.value.problems] == [got]


def test_a_boolean_where_any_value_belongs_is_kept() -> None:
    text = QUICKSTART.replace("default: 3,", "default: 3, required: false,")
    assert validate_text(text, "quickstart.yaml") == []


def test_a_step_with_a_boolean_for_a_number_is_still_checked() -> None:
    """The models refuse the boolean; the step is checked without that field, so a bad
    reference in its prompt is reported in the same pass."""
    text = """\
name: w
models:
  default: {backend: simulated}
steps:
  - id: a
    kind: llm
    prompt: hi {{ steps.nope.output }}
    max_tokens: true
    retry:
      max_attempts: yes
"""
    assert [(p.line, p.message.split(" (YAML")[0])
            for p in validate_text(text, "w.yaml")] == [
        (7, "unknown step 'nope' in `steps.nope.output`"),
        (8, "steps.0.max_tokens: a number, not `true`"),
        (10, "steps.0.retry.max_attempts: a number, not `true`")]


def test_a_step_with_a_quoted_number_is_still_checked() -> None:
    """As with a boolean: the step is checked without the quoted number, so a bad
    reference in its prompt is reported in the same pass (it was not)."""
    text = """\
name: w
models:
  default: {backend: simulated}
steps:
  - id: a
    kind: llm
    prompt: hi {{ steps.nope.output }}
    max_tokens: "40"
"""
    assert [(p.line, p.message) for p in validate_text(text, "w.yaml")] == [
        (7, "unknown step 'nope' in `steps.nope.output`"),
        (8, "steps.0.max_tokens: must be an integer, got the string '40'")]
