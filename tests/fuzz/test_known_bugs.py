"""Minimal reproducers of core bugs found by the fuzz suite (all fixed), kept as regressions.

Each states the behaviour the contract asks for. When a fix lands, its test passes,
the strict xfail turns that into a failure: remove the mark (and the matching entry
of ``fuzz.support.KNOWN_BUGS``).
"""

from __future__ import annotations

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.errors import ReferenceResolutionError, ValidationFailed
from orchestrator.graph.validate import validate_text
from orchestrator.spec import templates
from orchestrator.spec.loader import dump_yaml, load_yaml, parse_yaml
from orchestrator.spec.refs import Scope, resolve


def test_deeply_nested_yaml_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed):
        load_yaml("deep.yaml", text="a: " + "[" * 1500 + "]" * 1500)  # RecursionError



def test_recursive_alias_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed):
        load_yaml("alias.yaml", text="a: &x [*x]\n")  # RecursionError



def test_alias_bomb_is_not_expanded() -> None:
    # 6 levels of 6 aliases: 193 bytes that the loader walks as 6**6 = 46,656 leaves
    # (8 levels: 4.5 s, 10 levels: minutes and gigabytes)
    lines = ["a0: &a0 [x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 6) + "]" for i in range(1, 6)]
    _, smap, problems = parse_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert problems or len(smap.positions) < 1_000, len(smap.positions)



def test_control_character_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed):
        load_yaml("ctl.yaml", text="name: a\x1fb\n")  # yaml.reader.ReaderError



@pytest.mark.parametrize("text", ["~\n", "null\n", "!\n", "# only a comment\n---\n"])
def test_a_null_document_is_reported(text: str) -> None:
    # today: ValidationFailed with an empty problem list, and validate_text says "ok"
    assert validate_text(text, "null.yaml")



@pytest.mark.parametrize("key", ["--1", "²"])
def test_quoted_non_integer_key_into_a_list_is_a_reference_error(key: str) -> None:
    with pytest.raises(ReferenceResolutionError):
        resolve(f"${{inputs.xs['{key}']}}", Scope({"xs": [1, 2]}, {}))  # ValueError



@pytest.mark.parametrize(("source", "variables"), [
    ("{{ 1 / n }}", {"n": 0}),                        # ZeroDivisionError
    ("{{ range(n) | list }}", {"n": 10**6}),          # OverflowError (sandbox MAX_RANGE)
    ("{{ s[::n] }}", {"s": "abc", "n": 0}),           # ValueError
    ("{{ s | wordwrap(n) }}", {"s": "a b", "n": 0}),  # ValueError
    ("{{ s | truncate(n) }}", {"s": "", "n": 0}),     # AssertionError inside Jinja2
    ("{{ n | round(1, 'up') }}", {"n": 1.5}),         # FilterArgumentError
])
def test_template_evaluation_errors_are_reference_errors(source: str, variables: dict) -> None:
    assert templates.check(source) is None
    with pytest.raises(ReferenceResolutionError):
        templates.render(source, variables)



def test_deeply_nested_template_is_a_syntax_issue() -> None:
    source = "{{ " + "(" * 1500 + "1" + ")" * 1500 + " }}"
    assert templates.check(source) is not None  # RecursionError



@pytest.mark.parametrize(("yaml_text", "inputs"), [
    ("name: t\ninputs: {n: {type: integer}}\n"
     "models: {default: {backend: simulated, options: {time_scale: 0}}}\n"
     "steps:\n- {id: a, kind: llm, prompt: '{{ 100 / inputs.n }}'}\n", {"n": 0}),
    ("name: t\ninputs: {xs: {type: array}}\n"
     "steps:\n- {id: a, kind: tool, tool: calc, args: {expression: \"${inputs.xs['--1']}\"}}\n",
     {"xs": [1]}),
])
def test_a_step_whose_inputs_fail_to_render_fails_alone(yaml_text: str, inputs: dict) -> None:
    # today the error escapes the scheduler: Workflow.run raises an ExceptionGroup and
    # the run is recorded as cancelled; map and branch steps already fail cleanly
    wf = Workflow.from_yaml_text(yaml_text)
    result = anyio.run(lambda: wf.run(inputs))
    assert result.status == "failed"
    assert result.steps[0].status == "failed"



def test_dump_yaml_keeps_non_finite_numbers() -> None:
    spec, _ = load_yaml("inf.yaml", text="name: t\nsteps:\n- {id: a, kind: tool, tool: calc, "
                        "args: {expression: '1', x: .inf}}\n")
    again, _ = load_yaml("again.yaml", text=dump_yaml(spec))
    assert again == spec  # x: .inf comes back as x: null


