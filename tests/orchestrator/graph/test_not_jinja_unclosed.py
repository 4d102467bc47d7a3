"""Outputs, tool arguments and sub-workflow inputs are not Jinja2 templates: a
`{{ steps.a.output }}` there is a located problem, and so is one left unclosed
(`{{ steps.a.output `), which passed validation and reached the run's output as text."""

from __future__ import annotations

import pytest

from orchestrator.graph.validate import validate_text
from orchestrator.spec import templates

FLOW = """\
name: out_tmpl
steps:
  - id: a
    kind: tool
    tool: calc
    args: {expression: "6*7"}
  - id: b
    kind: tool
    tool: calc
    args: {expression: "{{ steps.a.output "}
  - id: m
    kind: map
    over: [1, 2]
    step: {kind: tool, tool: calc, args: {expression: "{% if item %}1"}}
outputs:
  good: "answer {{ steps.a.output }}"
  bad: "answer {{ steps.a.output "
  filtered: "answer {{ inputs.x | upper "
  odd: "answer {{ steps.a.output } ${steps.b.output}"
  text: "a brace {{ that reads no name "
"""


def test_an_unclosed_template_is_the_problem_a_closed_one_is() -> None:
    problems = validate_text(FLOW, "out_tmpl.yaml")
    assert [(p.line, p.message.split(" is passed")[0], p.message.split(": ")[-1])
            for p in problems] == [
        (10, "'{{ steps.a.output '", "tool arguments and sub-workflow inputs are not "
                                     "Jinja2 templates"),
        (14, "'{% if item %}1'", "tool arguments and sub-workflow inputs are not "
                                 "Jinja2 templates"),
        (16, "'answer {{ steps.a.output }}'", "outputs are not Jinja2 templates"),
        (17, "'answer {{ steps.a.output '", "outputs are not Jinja2 templates"),
        (18, "'answer {{ inputs.x | upper '", "outputs are not Jinja2 templates"),
        (19, "'answer {{ steps.a.output } ${steps.b.output}'",
         "outputs are not Jinja2 templates"),
    ]
    assert problems[3].hint == problems[2].hint == \
        "refer to a value with ${...}: ${inputs.NAME}, ${steps.ID.output}"


@pytest.mark.parametrize(("source", "names"), [
    ("{{ steps.a.output }} {% for v in inputs.x %}{{ v }}{% endfor %}", {"steps", "inputs"}),
    ("{{ steps.a.output ", {"steps"}),
    ("x {{ inputs.x | upper(item=1) ", {"inputs"}),
    ("{% if inputs.x is steps %}", {"if", "is", "inputs"}),  # a keyword too: callers look for names
    ("{{ 'steps' ", set()),
    ("{# steps ", set()),
    ("{{ item.name ) }} {{ steps", {"item"}),  # read up to `)`
])
def test_names_read_reads_what_a_broken_template_would(source: str, names: set[str]) -> None:
    assert templates.names_read(source) == names
