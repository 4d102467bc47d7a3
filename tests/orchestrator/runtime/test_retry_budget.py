"""A retry is a dispatch: once the run's token budget is spent (by the failed attempt
itself, or by other steps during the back-off), a step that spends tokens is not tried
again. Each retry went out whatever the budget said: a run with a budget of 30 tokens
whose step timed out mid-answer four times spent 129."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import StepTimeout
from orchestrator.runtime.contracts import Result, Task, Usage
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class TimesOut:
    """Runs `llm` steps: each of the first `fails` attempts spends `spent` tokens and
    times out (retryable); the next answers, spending as much."""

    spent: Usage
    fails: int = 100
    attempts: list[int] = field(default_factory=list)

    async def execute(self, task: Task, ctx: Any) -> Result:
        self.attempts.append(task.attempt)
        if len(self.attempts) <= self.fails:
            raise StepTimeout(f"step {task.step_id!r} timed out after 1s",
                              step_id=task.step_id, usage=self.spent)
        return Result(output="answer", usage=self.spent)

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


def workflow(budget: int, fake: TimesOut, backoff_s: float = 0) -> Workflow:
    wf = Workflow.from_yaml_text(f"""\
name: b
budget: {{max_tokens: {budget}}}
models:
  default: {{backend: simulated, options: {{time_scale: 0}}}}
steps:
  - id: think
    kind: llm
    prompt: "think hard"
    retry: {{max_attempts: 4, initial_backoff_s: {backoff_s}, jitter: 0}}
""")
    wf.register_executor("llm", fake)
    return wf


async def test_a_step_is_not_retried_once_its_attempt_spent_the_budget() -> None:
    fake = TimesOut(Usage(10, 25))
    store = MemoryStore()
    result = await workflow(30, fake).run(hooks=[StoreHook(store)])
    assert fake.attempts == [1]
    assert result.usage.total == 35
    (think,) = result.steps
    assert think.status == "failed"
    assert "token budget of 30 spent (35 used)" in (think.error or "")
    assert "timed out after 1s" in (think.error or "")  # the failure it is not retried after
    events = [e for e in await store.events(result.run_id) if getattr(e, "step_id", "")]
    assert [(e.kind, e.attempt) for e in events] == [
        ("step_started", 1), ("step_retrying", 1), ("step_failed", 1)]
    assert events[-1].error_type == "BudgetExceeded"
    record = await store.read_run(result.run_id)
    assert record is not None
    assert (record.steps[0].prompt_tokens, record.steps[0].completion_tokens) == (10, 25)


async def test_a_step_stopped_by_the_budget_does_not_wait_out_its_back_off() -> None:
    fake = TimesOut(Usage(10, 25))
    t0 = time.monotonic()
    result = await workflow(30, fake, backoff_s=60).run()
    assert time.monotonic() - t0 < 10
    assert fake.attempts == [1] and result.steps[0].error_type == "BudgetExceeded"


async def test_a_step_is_retried_while_the_budget_lasts() -> None:
    fake = TimesOut(Usage(5, 5), fails=2)
    result = await workflow(100, fake).run()
    assert result.ok, result.error
    assert fake.attempts == [1, 2, 3]
    assert result.usage.total == 30


async def test_the_retries_stop_where_the_budget_is_spent() -> None:
    fake = TimesOut(Usage(5, 5))
    result = await workflow(25, fake).run()
    assert fake.attempts == [1, 2, 3]  # 10, 20 spent: tried again; 30: not
    assert result.usage.total == 30
    assert "token budget of 25 spent (30 used)" in (result.steps[0].error or "")
