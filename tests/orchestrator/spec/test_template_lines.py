"""A template error names the file line its template line is on, whatever the style of
the YAML string holding the template: it counted lines from the key (right for a literal
block only), so a quoted or folded template whose lines YAML joins or splits named a
line off by one or more."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.spec.loader import parse_yaml

HEAD = """\
name: w
inputs:
  o: {type: object, default: {k: 1}}
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - id: a
    kind: llm
    prompt: """

#: (style, the prompt's text from its key on, where `BAD` stands for the failing tag);
#: the failing tag sits on the line that holds BAD
PROMPTS = [
    ("double-quoted, lines folded", '"first\n      second BAD\n      third"'),
    ("double-quoted, blank line", '"first\n\n      second BAD\n      third"'),
    ("double-quoted, two blank lines", '"first\n\n\n      second BAD"'),
    ("double-quoted, \\n escape", '"first\\nsecond BAD\n      third"'),
    ("double-quoted, \\n escapes then fold", '"first\\nsecond\\n\n      third BAD"'),
    ("double-quoted, escaped line break", '"first\\n\\\n      second BAD"'),
    ("single-quoted, lines folded", "'first\n      second BAD'"),
    ("single-quoted, blank line", "'first\n\n      second BAD\n      third'"),
    ("folded", ">\n      first\n      second\n\n      third BAD\n"),
    ("folded, more indented", ">\n      first\n        code\n      then BAD\n"),
    ("folded, one line", ">\n      only BAD\n"),
    ("literal", "|\n      first\n      second BAD\n      third\n"),
    ("literal, one line", "|\n      only BAD\n"),
    ("literal, indicator", "|2-\n        first\n\n        second BAD\n"),
    ("plain, lines folded", "first\n      second BAD\n"),
    ("plain, blank line", "first\n\n      second BAD\n"),
]


def _text(prompt: str, bad: str) -> str:
    return HEAD + prompt.replace("BAD", bad) + "\n"


def _line_of(text: str, needle: str) -> int:
    (line,) = [i for i, s in enumerate(text.splitlines(), 1) if needle in s]
    return line


@pytest.mark.parametrize(("style", "prompt"), PROMPTS, ids=[p[0] for p in PROMPTS])
def test_a_syntax_error_names_the_file_line_of_its_template_line(style: str,
                                                                prompt: str) -> None:
    text = _text(prompt, "{{ inputs.o }")
    with pytest.raises(ValidationFailed) as info:
        Workflow.from_yaml_text(text, "flow.yaml").compile()
    (problem,) = info.value.problems
    assert "template syntax error" in problem.message
    assert problem.line == _line_of(text, "{{ inputs.o }"), style


@pytest.mark.anyio
@pytest.mark.parametrize(("style", "prompt"), PROMPTS, ids=[p[0] for p in PROMPTS])
async def test_a_render_error_names_the_file_line_of_its_template_line(
        tmp_path: Path, style: str, prompt: str) -> None:
    text = _text(prompt, "{{ inputs.o.k.z }}")
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    result = await Workflow.from_yaml(path).run()
    error = result.steps[0].error or ""
    assert f"{path}:{_line_of(text, 'inputs.o.k.z')})" in error, (style, error)


def test_a_template_line_of_a_one_line_value_is_its_key_line() -> None:
    _, smap, _ = parse_yaml("a: 1\nb: 'x {{ y }'\n")
    assert smap.value_line(("b",), "x {{ y }", 1) == 2


def test_a_value_changed_after_loading_counts_lines_from_its_key() -> None:
    _, smap, _ = parse_yaml("a: 1\nb: |\n  x\n  y\n")
    assert smap.value_line(("b",), "x\ny\n", 2) == 4
    assert smap.value_line(("b",), "other\ntext\nhere", 3) == 5  # as before: key + line


def test_a_layout_is_computed_once_per_value() -> None:
    """A map's items fail on the same template: the document is not parsed again each."""
    _, smap, _ = parse_yaml("a: 1\nb: 'x\n  y {{ z }'\n")
    first = smap.layout(("b",), "x y {{ z }")
    assert first is not None and smap.layout(("b",), "x y {{ z }") is first
    assert smap.value_line(("b",), "x y {{ z }", 1, "{{ z") == 3
