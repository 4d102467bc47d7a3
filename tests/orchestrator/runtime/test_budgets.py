"""Token budgets: a run's budget stops dispatch of LLM steps and says why."""

from __future__ import annotations

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio

CHAIN = """\
name: budget
budget: {max_tokens: 70}
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: one, kind: llm, prompt: "first", max_tokens: 50}
  - {id: two, kind: llm, prompt: "second {{ steps.one.output }}", max_tokens: 50}
  - {id: three, kind: llm, prompt: "third {{ steps.two.output }}", max_tokens: 50}
  - {id: calc, kind: tool, tool: calc, args: {expression: "2+2"}}
"""


async def test_run_budget_stops_llm_dispatch_and_records_why() -> None:
    wf = Workflow.from_yaml_text(CHAIN)
    events: list = []  # type: ignore[type-arg]

    async def rec(batch: list) -> None:  # type: ignore[type-arg]
        events.extend(batch)

    result = await wf.run(hooks=[rec])
    steps = {s.id: s for s in result.steps}
    assert steps["one"].status == "succeeded"
    assert steps["two"].status == "succeeded"  # dispatched while under budget (51 < 70)
    assert steps["three"].status == "failed"
    assert "run token budget of 70 spent" in (steps["three"].error or "")
    assert steps["calc"].status == "succeeded"  # tools spend no tokens
    failed = next(e for e in events if e.kind == "step_failed")
    assert failed.error_type == "BudgetExceeded"
    assert result.usage.total >= 70


async def test_step_budget_stops_schema_repairs() -> None:
    wf = Workflow.from_yaml_text("""\
name: repair
models:
  default:
    backend: simulated
    options: {time_scale: 0, responses: [{match: ".*", output: "not json"}]}
steps:
  - id: ask
    kind: llm
    prompt: "give json"
    max_tokens: 20
    schema_repairs: 5
    budget_tokens: 30
    output_schema: {type: object, properties: {a: {type: integer}}, required: [a]}
""")
    result = await wf.run()
    step = result.steps[0]
    assert step.status == "failed"
    assert "token budget of 30 spent" in (step.error or "")
    assert step.prompt_tokens + step.completion_tokens >= 30  # the tokens of the failed attempt are kept
