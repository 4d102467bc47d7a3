"""`validate` flags a printed `steps`/`inputs`/`steps.ID` exactly where the run fails.

It refused `{{ steps.a | json }}` and `{{ steps.a | tojson }}`, which run fine:
`steps.a` is a dict, `{"output": ...}`, and those filters write it as JSON. Every other
text filter on `steps.a`, and every one on `steps` or `inputs`, fails at run time; the
table below runs each template through the run's renderer and holds validate to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import TemplateRenderError
from orchestrator.spec import templates
from orchestrator.spec.refs import Scope

pytestmark = pytest.mark.anyio

TARGETS = ["steps", "inputs", "steps.a", "steps['a']", "${steps.a}"]
FILTERS = sorted(templates._TEXT_FILTERS)
CHAINS = ["{{ steps.a | json | upper }}", "{{ steps.a | tojson(indent=2) | trim }}",
          "{{ steps.a | safe | json }}", "{{ steps.a | string | json }}",
          "{{ steps | json | upper }}", "{{ inputs | tojson | trim }}"]


def _template(target: str, name: str | None) -> str:
    if target.startswith("${"):
        return target if name is None else "{{ " + f"steps.a | {name}" + " }}"
    return "{{ " + target + (f" | {name}" if name else "") + " }}"


def _runs(source: str) -> bool:
    scope = Scope({"x": "hi"}, {"a": "hello"})
    try:
        templates.render(source, scope.template_vars())
    except TemplateRenderError:
        return False
    return True


@pytest.mark.parametrize("source", sorted(
    {_template(t, f) for t in TARGETS for f in [None, *FILTERS]} | set(CHAINS)))
def test_validate_flags_exactly_what_fails_at_run_time(source: str) -> None:
    assert bool(templates.value_misuses(source)) is not _runs(source)


@pytest.mark.parametrize("name", ["json", "tojson"])
def test_a_step_as_json_is_not_flagged(name: str) -> None:
    assert templates.value_misuses("{{ steps.a | " + name + " }}") == []
    assert templates.render("{{ steps.a | " + name + " }}",
                            Scope({}, {"a": "hello"}).template_vars()) == '{"output": "hello"}'


def echo(x: Any = None) -> Any:
    return x


async def test_json_of_a_step_validates_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text("""\
name: as_json
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: a, kind: tool, tool: echo, args: {x: "A"}}
  - {id: b, kind: llm, prompt: "{{ steps.a | json }}"}
  - {id: c, kind: llm, prompt: "{{ steps['a'] | tojson }}"}
""")
    wf = Workflow.from_yaml(path)
    wf.register_tool(echo)
    wf.compile()
    result = await wf.run({})
    assert {s.id: s.error for s in result.steps} == {"a": None, "b": None, "c": None}
