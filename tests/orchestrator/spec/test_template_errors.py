"""A template that fails to render says where and what: its line and the reference or
expression that failed, not only Jinja2's bare message; `check` finds unknown filters and
tests, which Jinja2 finds only when it renders."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import ReferenceResolutionError, TemplateRenderError
from orchestrator.spec import templates


def _steps(**outputs: Any) -> dict[str, Any]:
    return {"steps": {k: {"output": v} for k, v in outputs.items()}}


@pytest.mark.parametrize(("source", "variables", "line", "expression", "detail"), [
    ("Hello.\nItem: {{ steps.a.output.items[3] }}", _steps(a={"items": [1, 2, 3]}),
     2, "steps.a.output.items[3]", "list object has no element 3"),
    ("{{ steps.a.output.x.y }}", _steps(a={"x": "s"}),
     1, "steps.a.output.x.y", "has no attribute 'y'"),
    ("{{ inputs['a b'].c }}", {"inputs": {"a b": {}}},
     1, "inputs['a b'].c", "has no attribute 'c'"),
    ("one\ntwo\n{{ steps.a.output.x + 1 }}", _steps(a={"x": "s"}),
     3, "{{ steps.a.output.x + 1 }}", "TypeError: can only concatenate str"),
    ("{{ steps.a.output | wordwrap(0) }}", _steps(a="a b"),
     1, "{{ steps.a.output | wordwrap(0) }}", "ValueError: invalid width 0"),
    ("x ${steps.a.output.n / 0} y", _steps(a={"n": 1}),
     1, "${steps.a.output.n / 0}", "ZeroDivisionError"),
    ("{{ nobody }}", {}, 1, "{{ nobody }}", "'nobody' is undefined"),
])
def test_a_render_error_names_the_line_and_the_failing_reference(
        source: str, variables: dict[str, Any], line: int, expression: str, detail: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        templates.render(source, variables)
    exc = info.value
    assert (exc.line, exc.expression) == (line, expression)
    assert detail in exc.detail
    assert str(exc).startswith(f"template line {line}: {expression}: ")
    assert isinstance(exc, ReferenceResolutionError)  # what callers caught before


def test_a_reference_that_resolves_is_not_blamed_for_another_error_on_its_line() -> None:
    # `steps.a.output.x` is fine: the TypeError is the whole expression's
    with pytest.raises(TemplateRenderError) as info:
        templates.render("{{ steps.a.output.x | default('') }} {{ 1 + 'x' }}",
                         _steps(a={"x": 1}))
    assert "steps.a.output.x |" in info.value.expression  # the line, two tags on it
    assert info.value.detail.startswith("TypeError")


def test_located_names_the_place_in_front_of_the_expression() -> None:
    exc = TemplateRenderError("str object has no element 3", line=2,
                              expression="steps.a.output[3]", source="x")
    moved = exc.located("step 'b' prompt template (flow.yaml:14)")
    assert str(moved) == ("step 'b' prompt template (flow.yaml:14): steps.a.output[3]: "
                          "str object has no element 3")
    assert (moved.line, moved.source) == (2, "x")


@pytest.mark.parametrize(("source", "message", "line", "hint"), [
    ("a\n{{ x | uper }}", "no filter named 'uper'", 2, "did you mean 'upper'?"),
    ("{{ x | zzzz }}", "no filter named 'zzzz'", 1, "Jinja2's built-in filters"),
    ("{% if x is notatest %}y{% endif %}", "no test named 'notatest'", 1, ""),
])
def test_check_finds_unknown_filters_and_tests(source: str, message: str, line: int,
                                               hint: str) -> None:
    issue = templates.check(source)
    assert issue is not None
    assert (issue.message, issue.line) == (message, line)
    assert hint in issue.hint


def test_check_accepts_known_filters_and_tests() -> None:
    assert templates.check("{{ x | json }} {{ x | upper }}{% if x is defined %}{% endif %}"
                           "{% filter lower %}A{% endfilter %}") is None


def test_check_expression_finds_unknown_filters() -> None:
    issue = templates.check_expression("inputs.xs | lenght > 1")
    assert issue is not None and issue.message == "no filter named 'lenght'"
    assert issue.hint == "did you mean 'length'?"
    assert templates.check_expression("inputs.xs | length > 1 and 3 is odd") is None
    syntax = templates.check_expression("x >")
    assert syntax is not None and not syntax.hint


def test_a_field_of_a_json_object_comes_before_a_dict_method() -> None:
    # `steps.a.output.items[0]` was the dict's `items` method ("builtin_function_or_method
    # object has no element 0") where `${steps.a.output.items[0]}` read the field
    out = templates.render("{{ steps.a.output.items[0] }} {{ steps.a.output.keys }} "
                           "{% for k, v in inputs.m.items() %}{{ k }}={{ v }}{% endfor %}",
                           {**_steps(a={"items": [5], "keys": "K"}), "inputs": {"m": {"x": 1}}})
    assert out == "5 K x=1"
