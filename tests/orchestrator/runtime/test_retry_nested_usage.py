"""A retried `workflow` step: the tokens its failed attempt's sub-workflow spent count in
the run's usage, its token budget and its trace (``step_retrying.usage``), as a failed
or cancelled step's do. They were left out: after a sub-workflow timed out and its retry
succeeded, the run said half the tokens it had spent, and a budget let later steps run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executors.subworkflow import SubworkflowExecutor
from orchestrator import Workflow
from orchestrator.errors import StepTimeout
from orchestrator.runtime.contracts import Result, Task
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

CHILD = """\
name: child
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: think, kind: llm, prompt: "think", max_tokens: 40}
"""

PARENT = """\
name: parent
{budget}
models:
  default: {{backend: simulated, options: {{time_scale: 0}}}}
steps:
  - id: sub
    kind: workflow
    workflow: child.yaml
    retry: {{max_attempts: 2, initial_backoff_s: 0}}
  - {{id: after, kind: llm, prompt: "after {{{{ steps.sub.output }}}}", max_tokens: 5}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TimesOutOnce(SubworkflowExecutor):
    """Runs the sub-workflow; its first attempt then times out (as a `timeout_s` would
    after the child had spent its tokens), the next succeeds."""

    async def execute(self, task: Task, ctx: Any) -> Result:
        result = await super().execute(task, ctx)
        if task.attempt == 1:
            raise StepTimeout(f"step {task.step_id!r} timed out after 1s", step_id=task.step_id)
        return result


def parent(tmp_path: Path, budget: str = "") -> Workflow:
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "parent.yaml").write_text(PARENT.format(budget=budget))
    wf = Workflow.from_yaml(tmp_path / "parent.yaml")
    wf.register_executor("workflow", TimesOutOnce())
    return wf


async def child_tokens(store: MemoryStore, parent_id: str) -> list[int]:
    return [(r.prompt_tokens or 0) + (r.completion_tokens or 0)
            for r in await store.list_runs() if r.id != parent_id]


async def test_the_tokens_of_a_retried_sub_workflow_attempt_count_in_the_run(
        tmp_path: Path) -> None:
    store = MemoryStore()
    result = await parent(tmp_path).run(hooks=[StoreHook(store)])
    assert result.ok, result.error
    children = await child_tokens(store, result.run_id)
    assert len(children) == 2 and all(children)  # each attempt's child spent tokens
    after = next(s for s in result.steps if s.id == "after")
    assert result.usage.total == sum(children) + after.prompt_tokens + after.completion_tokens
    events = await store.events(result.run_id)
    (retrying,) = [e for e in events if e.kind == "step_retrying"]
    assert retrying.usage.prompt_tokens + retrying.usage.completion_tokens in children
    record = await store.read_run(result.run_id)
    assert record is not None
    (sub,) = [s for s in record.steps if s.id == "sub"]
    assert sub.prompt_tokens + sub.completion_tokens == sum(children)


async def test_a_budget_counts_the_tokens_of_a_retried_sub_workflow_attempt(
        tmp_path: Path) -> None:
    # each child spends 42 tokens: 84 in all, past the budget of 60 before `after`
    result = await parent(tmp_path, "budget: {max_tokens: 60}").run()
    steps = {s.id: s for s in result.steps}
    assert steps["sub"].status == "succeeded"
    assert steps["after"].status == "failed"
    assert "token budget of 60 spent" in (steps["after"].error or "")
