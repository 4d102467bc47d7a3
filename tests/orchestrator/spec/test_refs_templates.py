"""References and templates: typed resolution, interpolation, the sandbox."""

from __future__ import annotations

import re

import pytest

from orchestrator.errors import ReferenceResolutionError
from orchestrator.spec import templates
from orchestrator.spec.refs import Scope, parse_ref, resolve, step_deps

SCOPE = Scope({"q": "why", "n": 3}, {"a": {"items": [{"x": 1}, {"x": 2}], "t": "hi"}, "b": 7},
              {"item": {"name": "z"}})


def test_parse_paths() -> None:
    r = parse_ref("steps.a.output.items[1]['x']")
    assert (r.root, r.name, r.path) == ("steps", "a", ("items", 1, "x"))
    assert parse_ref("inputs.q").name == "q"
    with pytest.raises(ValueError):
        parse_ref("steps.a")
    with pytest.raises(ValueError):
        parse_ref("steps.a.output..x")


def test_whole_value_references_stay_typed() -> None:
    assert resolve("${steps.a.output.items}", SCOPE) == [{"x": 1}, {"x": 2}]
    assert resolve("${steps.b.output}", SCOPE) == 7
    assert resolve({"k": ["${inputs.n}", "${item.name}"]}, SCOPE) == {"k": [3, "z"]}


def test_references_inside_strings_interpolate_json() -> None:
    assert resolve("n=${inputs.n} t=${steps.a.output.t} l=${steps.a.output.items[0]}",
                   SCOPE) == 'n=3 t=hi l={"x": 1}'


def test_missing_values_name_the_reference() -> None:
    with pytest.raises(ReferenceResolutionError, match="no `9`"):
        resolve("${steps.a.output.items[9]}", SCOPE)
    with pytest.raises(ReferenceResolutionError, match="no output yet"):
        resolve("${steps.zz.output}", SCOPE)
    with pytest.raises(ReferenceResolutionError, match="no input named"):
        resolve("${inputs.zz}", SCOPE)


def test_step_deps() -> None:
    assert step_deps({"a": "${steps.x.output} ${steps.y.output.z}", "b": ["${inputs.q}"]}) == {
        "x", "y"}


def test_templates_render_refs_in_both_spellings() -> None:
    tvars = SCOPE.template_vars()
    assert templates.render("{{ inputs.q }} ${steps.b.output}", tvars) == "why 7"
    refs = templates.template_refs("{{ steps.a.output.items[0].x }} {{ inputs.q | upper }}")
    assert [(r.root, r.name, r.path) for r in refs] == [
        ("steps", "a", ("items", 0, "x")), ("inputs", "q", ())]


def test_values_are_never_rendered_as_templates() -> None:
    out = templates.render("Q: {{ inputs.q }}", {"inputs": {"q": "{{ 7 * 7 }}"}})
    assert out == "Q: {{ 7 * 7 }}"


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ inputs.__class__ }}{{ inputs.update({'x': 1}) }}",
])
def test_the_sandbox_blocks_escapes(payload: str) -> None:
    with pytest.raises(ReferenceResolutionError):
        templates.render(payload, {"inputs": {"q": 1}})


@pytest.mark.parametrize(("source", "message"), [
    ("{{ ('x' * 100000) * 100000 }}", "`*` would make a str of 10,000,000,000 items"),
    ("{{ 100000000 * 'x' }}", "`*` would make a str"),
    ("{{ [0] * 100000000 }}", "`*` would make a list"),
    ("{{ 2 ** 100000 }}", "2 ** 100000 is too large"),
    ("{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}"
     "{% endfor %}", "`+` would make a str"),
    ("{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}",
     "the rendered text is longer than 10,000,000 characters"),
])
def test_templates_cannot_build_text_past_the_memory_of_the_process(source: str,
                                                                     message: str) -> None:
    # the first was ten gigabytes: the process was killed for memory and its run lost
    with pytest.raises(ReferenceResolutionError, match=re.escape(message)):
        templates.render(source, {})


def test_branch_conditions_cannot_build_text_past_the_memory_of_the_process() -> None:
    with pytest.raises(ReferenceResolutionError, match=r"condition .* `\*` would make a str"):
        templates.evaluate("('x' * 100000) * 100000 != ''", {})


def test_templates_keep_operators_on_sizes_that_fit() -> None:
    assert templates.render("{{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 2 ** 10 }} {{ 1 + 2 }} "
                            "{{ 'a' + 'b' }} {{ [1] + [2] }} {{ 2.5 ** 2 }}", {}) == \
        "ababab xxx 1024 3 ab [1, 2] 6.25"
    assert templates.evaluate("'x' * 3 == 'xxx'", {}) is True


def test_template_syntax_errors_are_reported() -> None:
    issue = templates.check("line one\n{% if x %}\nno end")
    assert issue is not None and issue.line >= 2


@pytest.mark.parametrize(("text", "suffix"), [
    ("inputs.über", ": write a name of other characters than letters, digits, `_` and `-` "
                    "as ['über']"),
    ("steps.a.output.1st", ": write a name of other characters than letters, digits, `_` "
                           "and `-` as ['1st']"),
    ("inputs.a b", ""),
])
def test_a_name_a_reference_cannot_write_with_a_dot_says_how_to_write_it(
        text: str, suffix: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_ref(text)
    assert str(info.value).endswith(f"in reference `${{{text}}}`{suffix}")
    if suffix:
        fixed = text.rsplit(".", 1)[0] + suffix.rsplit(" as ", 1)[1]
        assert parse_ref(fixed).text == fixed
