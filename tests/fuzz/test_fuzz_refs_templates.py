"""`${...}` references and Jinja2 templates on generated input: a value, a ValueError
(parse_ref's contract) or a ReferenceResolutionError; templates check, list their refs
and render in the sandbox without any other exception."""

from __future__ import annotations

import json
from typing import Any

from fuzz.support import (
    EXPRESSIONS,
    FUZZ,
    JSON_LIKE,
    PLAIN_JSON,
    REF_TEXTS,
    REFS,
    TEMPLATES,
    outcome,
)
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.errors import ReferenceResolutionError
from orchestrator.spec import templates
from orchestrator.spec.refs import Ref, Scope, iter_refs, parse_ref, resolve, step_deps

SCOPES = st.builds(
    Scope,
    st.dictionaries(st.sampled_from(["q", "n", "x", "xs", "k y"]), PLAIN_JSON, max_size=4),
    st.dictionaries(st.sampled_from(["a", "b", "c", "s_1", "x-y"]), PLAIN_JSON, max_size=4),
    st.none() | st.dictionaries(st.sampled_from(["item", "index", "x"]), PLAIN_JSON,
                                max_size=2),
)


@FUZZ
@given(REF_TEXTS)
@example("steps.a.output['--1']")
@example("inputs.q[99999999999999999999999]")
@example("steps.a.output" + ".x" * 500)
def test_parse_ref_returns_a_ref_or_value_error(text: str) -> None:
    kind, ref = outcome(parse_ref, text, allowed=(ValueError,))
    if kind == "ok":
        assert isinstance(ref, Ref) and ref.text == text
        if ref.root == "steps":
            assert ref.step_id == ref.name and ref.name
        assert all(isinstance(p, str | int) for p in ref.path)


@FUZZ
@given(JSON_LIKE)
def test_iter_refs_and_step_deps_never_raise(value: Any) -> None:
    for ref, raw in iter_refs(value):
        assert isinstance(ref, Ref | ValueError) and raw.startswith("${")
    assert all(isinstance(s, str) for s in step_deps(value))


@FUZZ
@given(JSON_LIKE, SCOPES)
@example("${inputs.xs['--1']}", Scope({"xs": [1]}, {}))
@example("${steps.a.output['²']}", Scope({}, {"a": [1]}))
def test_resolve_returns_a_value_or_reference_error(value: Any, scope: Scope) -> None:
    kind, out = outcome(resolve, value, scope, allowed=(ReferenceResolutionError,))
    if kind != "ok":
        return
    json.dumps(out, allow_nan=True)  # still JSON data
    if isinstance(value, str) and "${" not in value:
        assert out == value


@FUZZ
@given(REFS, SCOPES)
def test_a_whole_reference_resolves_to_the_typed_value(ref_text: str, scope: Scope) -> None:
    try:
        ref = parse_ref(ref_text[2:-1])
        expected = scope.lookup(ref)
    except (ValueError, ReferenceResolutionError):
        return
    if "}" in ref_text[2:-1]:
        return
    assert resolve(ref_text, scope) == expected


TEMPLATE_VARS = st.fixed_dictionaries({
    "inputs": st.dictionaries(st.sampled_from(["q", "n"]), PLAIN_JSON, max_size=2),
    "steps": st.dictionaries(st.sampled_from(["a", "b", "c"]),
                             st.builds(lambda v: {"output": v}, PLAIN_JSON), max_size=3),
}, optional={"item": PLAIN_JSON, "index": st.integers(0, 5), "x": PLAIN_JSON,
             "q": PLAIN_JSON})


@FUZZ
@given(TEMPLATES, TEMPLATE_VARS)
@example("{{ ''.__class__.__mro__[1].__subclasses__() }}", {"inputs": {}, "steps": {}})
@example("{{ inputs.q }}", {"inputs": {"q": "{{ ''.__class__.__mro__ }}"}, "steps": {}})
@example("{% for i in range(10) %}{{ i }}{% endfor %}", {"inputs": {}, "steps": {}})
def test_templates_check_list_refs_and_render(source: str, variables: dict[str, Any]) -> None:
    kind, issue = outcome(templates.check, source, allowed=())
    kind2, refs = outcome(templates.template_refs, source, allowed=())
    if kind2 == "ok":
        assert all(isinstance(r, templates.TemplateRef) for r in refs)
    if kind != "ok" or issue is not None:
        assert kind != "ok" or isinstance(issue, templates.TemplateIssue)
        return
    kind, text = outcome(templates.render, source, variables,
                         allowed=(ReferenceResolutionError,))
    if kind == "ok":
        assert isinstance(text, str)
        assert "<class" not in text  # no Python object reached through the sandbox


@FUZZ
@given(EXPRESSIONS, TEMPLATE_VARS)
@example("steps.a.output.__class__", {"inputs": {}, "steps": {"a": {"output": 1}}})
def test_expressions_check_and_evaluate(expression: str, variables: dict[str, Any]) -> None:
    kind, issue = outcome(templates.check_expression, expression, allowed=())
    outcome(templates.template_refs, expression, expression=True, allowed=())
    if kind != "ok" or issue is not None:
        return
    outcome(templates.evaluate, expression, variables, allowed=(ReferenceResolutionError,))


@FUZZ
@given(st.lists(st.sampled_from([
    "{{ 1 / n }}", "{{ range(n) | list | length }}", "{{ s[::n] }}", "{{ s | wordwrap(n) }}",
    "{{ n | round(1, 'up') }}", "{{ s | int }}", "{{ s.x }}", "{{ n ** 2 }}", "{{ s[n] }}",
    "{{ s | batch(n) | list }}", "{{ s | truncate(n) }}", "{{ '%d' % s }}", "{{ n // n }}",
]), min_size=1, max_size=3).map("".join), st.integers(-2, 200_000), st.text(max_size=5))
def test_data_dependent_template_errors_are_typed(source: str, n: int, s: str) -> None:
    """Run-time values (an LLM's output...) can make a valid template fail: it must fail
    as a ReferenceResolutionError, which fails the step, not the scheduler."""
    outcome(templates.render, source, {"n": n, "s": s}, allowed=(ReferenceResolutionError,))
