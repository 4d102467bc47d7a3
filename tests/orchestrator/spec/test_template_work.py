"""A template's work is bounded, as its size is: two nested loops of 100,000, a macro
that calls itself twice, or a loop over a long string's `upper` rendered little text
and ran for hours, with no timeout to stop the step. Each loop iteration, call, and item
or 100 characters a filter, method or operator goes through is a step of work; past
1,000,000 the render fails at once, naming the template's line and the limit, and the
step fails at its file:line. Every realistic prompt renders as before."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from template_runs import Outcome, render_each

from orchestrator import Workflow
from orchestrator.errors import ReferenceResolutionError, TemplateRenderError
from orchestrator.spec import templates

LIMIT = "more than 1,000,000 steps of work"

#: (template, the line its error names): each ran for hours (or for ever)
ENDLESS = [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", 1),
    ("a\n{% for i in range(100000) %}\n{% for j in range(100000) if j < 0 %}{% endfor %}"
     "{% endfor %}", 3),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
     "{{ f(30) }}", 1),
    ("{% for x in range(3) recursive %}{% if loop.depth < 40 %}{{ loop(range(3)) }}"
     "{% endif %}{% endfor %}", 1),
    ("{% macro twice() %}{{ caller() }}{{ caller() }}{% endmacro %}{% macro f(n) %}"
     "{% if n %}{% call twice() %}{{ f(n - 1) }}{% endcall %}{% endif %}{% endmacro %}"
     "{{ f(30) }}", 1),
    ("{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{{ s.upper().lower() | upper"
     " | length }}{% endfor %}", 1),
    ("{% set s = range(100000) | list %}{% for i in range(100000) %}{{ s | sort | length }}"
     "{% endfor %}", 1),
    ("{% set s = 'ab ' * 1000000 %}{% for i in range(100000) %}{{ s | wordwrap | length }}"
     "{% endfor %}", 1),
    ("{% set s = 'ab ' * 1000000 %}{% for i in range(100000) %}{{ s.split() | length }}"
     "{% endfor %}", 1),
    ("{% set ns = namespace(s='') %}{% for i in range(100000) %}"
     "{% set ns.s = ns.s ~ 'abcdefghij' * 10 %}{% endfor %}", 1),
    # each comparison goes through two texts of 5,000,000 characters
    ("{% set a = 'x' * 5000000 %}{% set b = 'x' * 5000000 %}{% for i in range(100000) %}"
     "{% if a == b %}{% endif %}{% endfor %}", 1),
    ("{% set a = 'x' * 5000000 %}{% set b = 'x' * 5000000 %}{% for i in range(100000) %}"
     "{% if a is eq b %}{% endif %}{% endfor %}", 1),
]

@pytest.fixture(scope="module")
def errors() -> dict[str, Outcome]:
    return render_each([source for source, _ in ENDLESS], alarm_s=30)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGALRM is POSIX")
@pytest.mark.parametrize(("source", "line"), ENDLESS, ids=[s for s, _ in ENDLESS])
def test_a_template_cannot_work_without_end(
        errors: dict[str, Outcome], source: str, line: int) -> None:
    outcome = errors[source]
    assert LIMIT in outcome.message, outcome.message
    assert outcome.message.startswith(f"template line {line}: ")
    assert outcome.line == line
    assert outcome.seconds < 30


def test_the_limit_counts_each_iteration() -> None:
    source = "{% for x in items %}{% endfor %}"
    assert templates.render(source, {"items": list(range(1_000_000))}) == ""
    with pytest.raises(TemplateRenderError, match=LIMIT):
        templates.render(source, {"items": list(range(1_000_001))})


def test_each_render_has_its_own_budget() -> None:
    source = "{% for x in items %}{% endfor %}"
    for _ in range(3):
        assert templates.render(source, {"items": list(range(900_000))}) == ""


def test_a_condition_is_bounded_too() -> None:
    with pytest.raises(ReferenceResolutionError, match=LIMIT):
        templates.evaluate("(s * 1000) | unique | list | length > 0",
                           {"s": list(range(10_000))})


_PLAIN = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                       keep_trailing_newline=True)

#: a few-shot prompt over 1,000 examples, with a macro, a call block, filters and loops
FEW_SHOT = """\
{% macro example(e, n) -%}
Example {{ n }} ({{ e.tags | join(', ') | upper }}):
Q: {{ e.question | trim | wordwrap(60) }}
A: {{ e.answer | tojson }}{% if caller is defined %}{{ caller() }}{% endif %}
{%- endmacro %}
{% for e in examples if e.answer is not none -%}
{% if loop.index is even %}{% call example(e, loop.index) %} (even){% endcall %}
{% else %}{{ example(e, loop.index) }}
{% endif %}{% for t in e.tags | sort %}{{ t | title }}{{ ' ' ~ loop.index }}{% endfor %}
{% endfor %}
{{ examples | map(attribute='question') | map('length') | sum }} characters of questions.
Now: {{ question }}"""


def test_a_few_shot_prompt_over_1000_examples_renders_as_jinja2_renders_it() -> None:
    examples = [{"question": f"What is {i} + {i}? " * 20, "answer": {"sum": 2 * i},
                 "tags": ["arith", f"n{i}", "easy"]} for i in range(1000)]
    values: dict[str, Any] = {"examples": examples, "question": "What is 2 + 2?"}
    text = templates.render(FEW_SHOT, values)
    assert text == _PLAIN.from_string(FEW_SHOT).render(values)
    assert "Example 1000 (ARITH, N999, EASY)" in text


@pytest.mark.anyio
async def test_the_step_fails_naming_its_file_line_and_the_limit(tmp_path: Path) -> None:
    text = ("name: w\nmodels:\n  default: {backend: simulated, options: {time_scale: 0}}\n"
            "steps:\n  - id: a\n    kind: llm\n    prompt: |\n      Hello\n"
            "      {% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}"
            "{% endfor %}\n")
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    result = await Workflow.from_yaml(path).run()
    assert not result.ok
    error = result.steps[0].error or ""
    assert f"({path}:9)" in error, error
    assert LIMIT in error
