"""A template is parsed once and its tree shared by the checks that read it (`check`,
`template_refs`, `undeclared_names`, `value_misuses`): compile parsed each template four
times. No reader may change the shared tree (Jinja2's `find_undeclared_variables` does:
its constant folding puts new nodes in place), nor read it differently the second time."""

from __future__ import annotations

import pytest
from jinja2 import meta, nodes

from orchestrator.spec import templates

SOURCES = [
    "{{ 1 + 2 }} {{ x }}",
    "{% set a = 1 + 2 %}{% for i in [1, 2] %}{{ i * (3 + 4) }}{% endfor %}{{ f(1 + 2) }}",
    "{{ (1 + 2) ~ steps.a.output }}{% if 1 + 1 %}{{ y | default(2 * 3) }}{% endif %}",
    "{% macro m(a=1 + 2) %}{{ a + (2 * 3) }}{% endmacro %}{{ m() }}{{ d[1 + 1] }}",
    "{{ steps['a' ~ 'b'].output }} {{ inputs.q | upper }} {{ steps.a | json }}",
    "${steps.a.output.items[0]} {% for steps in [1] %}{{ steps }}{% endfor %}",
    "{{ x.y(1 + 1, k=2 * 2) }} {{ [1, 2] | join(',') }} {{ steps }}",
]


def _snapshot(tree: nodes.Node) -> list[tuple[int, str]]:
    return [(id(n), repr(n)) for n in [tree, *tree.find_all(nodes.Node)]]


def _readers(source: str) -> tuple[object, ...]:
    return (templates.check(source), templates.template_refs(source),
            templates.undeclared_names(source), templates.value_misuses(source))


@pytest.mark.parametrize("source", SOURCES)
def test_one_parse_is_shared_and_left_as_it_was(source: str) -> None:
    templates._parsed.cache_clear()
    first = _readers(source)
    tree = templates._parsed(source, False)
    before = _snapshot(tree)
    assert _readers(source) == first  # read again from the same tree: the same answers
    assert _snapshot(tree) == before
    assert templates._parsed.cache_info().misses == 1


@pytest.mark.parametrize("source", SOURCES)
def test_undeclared_names_are_jinja2s(source: str) -> None:
    fresh = templates.environment().parse(templates.to_jinja(source))
    assert templates.undeclared_names(source) == meta.find_undeclared_variables(fresh)


def test_an_expression_is_parsed_once_too() -> None:
    templates._parsed.cache_clear()
    expr = "steps.a.output == 'x' and inputs.q"
    assert templates.check_expression(expr) is None
    assert {r.root for r in templates.template_refs(expr, expression=True)} == {
        "steps", "inputs"}
    assert templates.undeclared_names(expr, expression=True) == {"steps", "inputs"}
    assert templates._parsed.cache_info().misses == 1
