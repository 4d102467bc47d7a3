"""A problem with a value names the file line the offending text is on, whatever the
YAML style: a reference in a template or string that spans lines of the file was
reported at its key's line, one nested in a tool's `args` at `args:`, a duplicate step
given by `- *alias` at the step it copies; and messages name what to write instead
(a near-miss field name, one document per file)."""

from __future__ import annotations

import pytest

from orchestrator.graph.validate import validate_text

HEAD = """\
name: w
inputs:
  o: {type: string, default: x}
models:
  default: {backend: simulated}
steps:
  - id: a
    kind: llm
    prompt: hi
  - id: b
    kind: llm
    prompt: """

#: (style, the prompt from its key on; BAD stands for the offending text)
PROMPTS = [
    ("literal", "|\n      one\n      two\n      three BAD\n"),
    ("literal, indicator and keep", "|+2\n        one\n\n        BAD\n\n"),
    ("folded", ">-\n      one\n\n      two BAD\n"),
    ("double-quoted", '"one\n      two\n      BAD"\n'),
    ("single-quoted", "'one\n\n      BAD'\n"),
    ("plain", "one\n      two\n      BAD\n"),
]
#: (offending text, the word the column points at, what the message says)
BAD = [
    ("{{ steps.nope.output }}", "nope", "unknown step 'nope'"),
    ("{{ inputs.nope }}", "nope", "unknown input 'nope'"),
    ("${steps.nope.output}", "nope", "unknown step 'nope'"),
    ("{{ nope }}", "nope", "unknown name 'nope'"),
    ("{{ steps.a.outptu }}", "a", "a step's value is `steps.a.output`"),
]


def _where(text: str, needle: str) -> tuple[int, int]:
    (found,) = [(i, line.find(needle) + 1) for i, line in enumerate(text.split("\n"), 1)
                if needle in line]
    return found


@pytest.mark.parametrize(("style", "prompt"), PROMPTS, ids=[p[0] for p in PROMPTS])
@pytest.mark.parametrize(("bad", "word", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_reference_in_a_template_names_its_own_line(style: str, prompt: str, bad: str,
                                                     word: str, message: str) -> None:
    text = HEAD + prompt.replace("BAD", bad)
    (problem,) = validate_text(text, "f.yaml")
    assert message in problem.message
    line, _ = _where(text, bad)
    assert (problem.line, problem.column) == (line, _where(text, bad)[1] + bad.find(word)), style


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_reference_after_unicode_a_bom_and_comments_names_its_line_and_column(
        eol: str) -> None:
    text = ("\ufeff# é😀 a comment\n" + HEAD.replace("prompt: hi", "prompt: hi  # 😀") +
            "|\n      😀 one 😀\n      # not a comment\n      é😀 {{ steps.nope.output }}\n")
    (problem,) = validate_text(text.replace("\n", eol), "f.yaml")
    assert "unknown step 'nope'" in problem.message
    assert (problem.line, problem.column) == (16, 19)


def test_a_reference_nested_in_tool_args_names_its_own_key() -> None:
    text = HEAD.rsplit("kind: llm", 1)[0] + "kind: tool\n    tool: calc\n    args:" + (
        "\n      expression: >-\n        1 +\n        ${inputs.nope}\n"
        "      extra:\n        deep: ['${steps.zzz.output}']\n")
    found = [(p.line, p.column, p.message) for p in validate_text(text, "f.yaml")]
    assert (16, 9, "unknown input 'nope' in `${inputs.nope}`") in found
    assert (18, 16, "unknown step 'zzz' in `${steps.zzz.output}`") in found


def test_a_reference_in_sub_workflow_inputs_names_its_own_key() -> None:
    text = HEAD.rsplit("kind: llm", 1)[0] + ("kind: workflow\n    workflow: w.yaml\n"
                                             "    inputs:\n      q: x\n      r: ${inputs.nope}\n")
    found = [(p.line, p.message) for p in validate_text(text, "f.yaml")]
    assert (15, "unknown input 'nope' in `${inputs.nope}`") in found


def test_a_duplicate_step_given_by_an_alias_is_at_the_alias() -> None:
    text = ("name: w\nmodels:\n  default: {backend: simulated}\nsteps:\n"
            "  - &s\n    id: a\n    kind: llm\n    prompt: hi\n  - id: b\n    kind: llm\n"
            "    prompt: hi\n  - *s\n")
    (problem,) = validate_text(text, "f.yaml")
    assert (problem.line, problem.column, problem.message) == (12, 5, "duplicate step id 'a'")


def test_a_second_document_is_named_at_its_start() -> None:
    text = HEAD + "hi\n---\nname: other\n"
    (problem,) = validate_text(text, "f.yaml")
    assert (problem.line, problem.column) == (13, 1)
    assert problem.message == "a second YAML document starts here: a workflow file holds one"


@pytest.mark.parametrize(("yaml_text", "field", "meant"), [
    ("name: w\nstep:\n  - {id: a, kind: llm, prompt: x}\n", "step", "steps"),
    ("name: w\nsteps:\n  - {id: a, kind: llm, prompt: x, max_token: 3}\n", "max_token",
     "max_tokens"),
    ("name: w\nsteps:\n  - {id: a, kind: tool, tool: calc, arg: {}}\n", "arg", "args"),
    ("name: w\nsteps:\n  - {id: a, kind: map, over: [1], step: {kind: llm, prompt: x, "
     "modle: m}}\n", "modle", "model"),
    ("name: w\nsteps:\n  - {id: s, kind: sample, prompt: x, n: 2}\n  - {id: j, kind: join, "
     "of: s, reducr: vote}\n", "reducr", "reducer"),
    ("name: w\nmodels:\n  m: {backend: simulated, option: {}}\nsteps: []\n", "option",
     "options"),
    ("name: w\ninputs:\n  x: {typ: string}\nsteps: []\n", "typ", "type"),
    ("name: w\noutputs:\n  o: {from: x, schem: {}}\nsteps: []\n", "schem", "schema"),
], ids=["top", "step", "tool step", "map body", "join", "model", "input", "output"])
def test_an_unknown_field_close_to_a_known_one_names_it(yaml_text: str, field: str,
                                                       meant: str) -> None:
    problems = validate_text(yaml_text, "f.yaml")
    (problem,) = [p for p in problems if p.message.startswith(f"unknown field `{field}`")]
    assert problem.hint == f"did you mean `{meant}`? Else remove it"
    assert problem.line == _where(yaml_text, field + ":")[0]


def test_an_unknown_field_far_from_any_keeps_the_general_hint() -> None:
    (problem,) = validate_text("name: w\ncolour: red\nsteps:\n  - {id: a, kind: tool, "
                               "tool: calc, args: {expression: '1'}}\n", "f.yaml")
    assert problem.message == "unknown field `colour`"
    assert problem.hint == "remove it, or check its spelling against `ponder schema`"


def test_a_bad_workflow_name_is_told_what_a_name_may_hold() -> None:
    (problem,) = validate_text("name: my flow\nsteps:\n  - {id: a, kind: tool, tool: calc, "
                               "args: {expression: '1'}}\n", "f.yaml")
    assert problem.hint == "use letters, digits, `_`, `-` and `.`"


def test_references_without_problems_do_not_parse_the_document_again() -> None:
    """Where a reference is in its value is worked out for a problem only: a workflow of
    many multi-line prompts is not parsed once more for each."""
    from orchestrator.graph.compile import compile_workflow
    from orchestrator.spec.loader import load_yaml

    text = HEAD + "|\n      one\n      {{ steps.a.output }} {{ inputs.o }}\n"
    spec, smap = load_yaml("f.yaml", text=text)
    compile_workflow(spec, smap)
    assert smap._layouts == {}
