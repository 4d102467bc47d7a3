"""A `${...}` reference in a template writes what it writes everywhere else: a string as
it is, any other value as JSON. In a prompt it wrote Python's repr (`True`, `None`,
`{'a': 1}`) where a tool argument or an output got `true`, `null`, `{"a": 1}`."""

from __future__ import annotations

import pytest

from orchestrator.errors import TemplateRenderError
from orchestrator.spec import templates
from orchestrator.spec.refs import Scope, resolve

OBJ = {"a": [1, "two", {"b": None}], "ok": True}
SCOPE = Scope({"obj": OBJ, "flag": True, "nothing": None, "f": 0.1, "n": 3, "s": "héllo",
               "quote": 'say "hi"', "big": 10**20, "empty": {}},
              {"a": {"x": [False, 2.5]}}, {"item": {"k": "v"}})
TEXT = ("obj=${inputs.obj} flag=${inputs.flag} none=${inputs.nothing} f=${inputs.f} "
        "n=${inputs.n} s=${inputs.s} q=${inputs.quote} big=${inputs.big} e=${inputs.empty} "
        "x=${steps.a.output.x} x0=${steps.a.output.x[0]} item=${item} k=${item.k}")


def test_a_reference_in_a_template_writes_what_it_writes_in_arguments_and_outputs() -> None:
    rendered = templates.render(TEXT, SCOPE.template_vars())
    assert rendered == resolve(TEXT, SCOPE)
    assert rendered.startswith('obj={"a": [1, "two", {"b": null}], "ok": true} flag=true '
                               'none=null f=0.1 n=3 s=héllo q=say "hi" ')


def test_a_prompt_that_is_one_reference_is_its_value_as_text() -> None:
    assert templates.render("${inputs.obj}", SCOPE.template_vars()) == \
        '{"a": [1, "two", {"b": null}], "ok": true}'
    assert templates.render("${inputs.s}", SCOPE.template_vars()) == "héllo"


def test_jinja2_expressions_print_as_jinja2_prints_them() -> None:
    # `{{ }}` is Jinja2's, as the README has it; its `json` filter writes the same JSON
    tvars = SCOPE.template_vars()
    assert templates.render("{{ inputs.flag }} {{ inputs.nothing }}", tvars) == "True None"
    assert templates.render("{{ inputs.obj | json }}", tvars) == \
        templates.render("${inputs.obj}", tvars)


def test_a_reference_in_a_tag_or_a_loop_is_the_value_itself() -> None:
    tvars = SCOPE.template_vars()
    source = "{% for v in steps.a.output.x %}[${v}]{% endfor %} ${inputs.n + 1}"
    # `${v}` is a local name's reference; `${inputs.n + 1}` is none, put in as written
    assert templates.render(source, tvars) == "[false][2.5] 4"


def test_a_reference_that_reads_nothing_names_itself() -> None:
    with pytest.raises(TemplateRenderError) as info:
        templates.render("a\nb ${inputs.nope}", SCOPE.template_vars())
    assert info.value.line == 2
    assert "no input named 'nope'" in str(info.value)
    assert "JSON" not in str(info.value)
    with pytest.raises(TemplateRenderError, match=r"steps\.a\.output\.k: .* no attribute 'k'"):
        templates.render("${steps.a.output.k}", SCOPE.template_vars())


@pytest.mark.parametrize("source", ["${steps}", "{% for s in [steps] %}${s}{% endfor %}"])
def test_a_namespace_through_a_reference_says_what_to_write(source: str) -> None:
    with pytest.raises(TemplateRenderError, match=r"it is not a value: write steps\.ID\.output"):
        templates.render(source, SCOPE.template_vars())


def test_the_filter_of_references_is_no_suggestion_for_a_misspelt_one() -> None:
    issue = templates.check("{{ inputs.s | _ref_txt }}")
    assert issue is not None and "_ref_text" not in issue.hint
