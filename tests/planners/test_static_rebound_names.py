"""A static plan's step references are renamed under the plan step (`steps.a` ->
`steps['p__a']`), but a `steps` the template binds itself (`{% for steps in xs %}`,
`{% set steps = ... %}`) is its own value there: it was renamed too, so the plan read a
field its own value does not have, or a step that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Workflow
from planners.static import _patterns, _rename
from planners.testing import ScriptedLLM

pytestmark = pytest.mark.anyio
PlanWorkflow = Callable[..., Workflow]


async def test_a_rebound_steps_is_rendered_as_its_own_value(plan_workflow: PlanWorkflow,
                                                            recorder: Any) -> None:
    steps = [
        {"id": "name", "kind": "tool", "tool": "calc", "args": {"expression": "7"}},
        {"id": "words", "kind": "llm", "prompt":
            "{% for steps in [{'name': 'loop'}] %}{{ steps.name }}{% endfor %} "
            "{% set steps = {'name': 'set'} %}{{ steps['name'] }}"},
        {"id": "more", "kind": "llm", "prompt": "got {{ steps.name.output }}"},
    ]
    llm = ScriptedLLM([("loop set", "said"), ("got 7", "again")])
    wf = plan_workflow(llm, planner="static", options={"steps": steps, "output": "words"})
    result = await wf.run(hooks=[recorder])
    assert result.ok, result.error
    assert result.output == "said"
    patched = {s["id"]: sorted(s["deps"]) for p in recorder.of("graph_patched")
               for s in p.steps}
    assert patched["p__words"] == [] and patched["p__more"] == ["p__name"]


@pytest.mark.parametrize(("template", "renamed"), [
    ("{% for steps in xs %}{{ steps.a }}{% endfor %}{{ steps.a.output }}",
     "{% for steps in xs %}{{ steps.a }}{% endfor %}{{ steps['p__a'].output }}"),
    ("{{ steps.a.output }}{% set steps = x %}{{ steps['a'] }}",
     "{{ steps['p__a'].output }}{% set steps = x %}{{ steps['a'] }}"),
    # bound in one branch only: it may be the namespace, and stays a dependency
    ("{% if c %}{% set steps = x %}{% endif %}${steps.a.output}",
     "{% if c %}{% set steps = x %}{% endif %}${steps['p__a'].output}"),
    ("{% macro m(steps) %}{{ steps.a }}{% endmacro %}{{ steps.a.output }}",
     "{% macro m(steps) %}{{ steps.a }}{% endmacro %}{{ steps['p__a'].output }}"),
])
def test_only_the_namespace_is_renamed(template: str, renamed: str) -> None:
    ids = {"a": "p__a"}
    assert _rename(template, ids, _patterns(ids)) == renamed
