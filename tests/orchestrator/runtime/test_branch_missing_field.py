"""A branch condition that reads a field the output does not have fails its step, naming
the field, as the same path in a template does: Jinja's expressions read it as None by
default, so a misspelt `steps.a.output.nope` was quietly false and the run took another
case. `is defined`, `.get()` and a skipped step's null still read as before."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def echo(x: Any = None) -> Any:
    return x


def _flow(when: str) -> str:
    return f"""\
name: branch_fields
steps:
  - {{id: a, kind: tool, tool: echo, args: {{x: {{n: 1, items: []}}}}}}
  - id: route
    kind: branch
    cases:
      - when: "{when}"
        then: [hit]
      - when: "true"
        then: [other]
    default: [other]
  - {{id: hit, kind: tool, tool: echo, args: {{x: hit}}}}
  - {{id: other, kind: tool, tool: echo, args: {{x: other}}}}
"""


async def _route(when: str) -> Any:
    wf = Workflow.from_yaml_text(_flow(when))
    wf.register_tool(echo)
    result = await wf.run({})
    return result, {s.id: s for s in result.steps}["route"]


@pytest.mark.parametrize("when", ["steps.a.output.nope", "steps.a.output.nope == 1",
                                  "not steps.a.output.nope", "steps.a.output['nope']"])
async def test_a_missing_field_fails_the_branch_naming_it(when: str) -> None:
    result, route = await _route(when)
    assert result.status == "failed" and route.status == "failed"
    assert "case 1" in (route.error or "") and "'nope'" in (route.error or ""), route.error


@pytest.mark.parametrize(("when", "taken"), [
    ("steps.a.output.nope is defined", ["other"]),
    ("steps.a.output.get('nope') is none", ["hit"]),
    ("steps.a.output.items", ["other"]),  # an empty list: false, as before
    ("steps.a.output.n == 1", ["hit"]),
])
async def test_what_the_output_has_reads_as_before(when: str, taken: list[str]) -> None:
    result, route = await _route(when)
    assert result.ok, result.error
    assert route.output == {"taken": taken}
