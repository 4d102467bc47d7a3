"""What code waiting on a step (a planner, a fan-out) reads of its tokens
(``StepOutcome.usage``) counts every attempt, as the run's totals and the trace's fold of
the step (``RunResult.steps``, ``ponder show``) do: not only its last attempt's."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.test_retry_usage import SLOW

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_retried_steps_outcome_counts_every_attempts_tokens() -> None:
    store = MemoryStore()
    holder: dict[str, Any] = {}
    result = await Workflow.from_yaml_text(SLOW).run(
        hooks=[StoreHook(store)], on_scheduler=lambda s: holder.__setitem__("s", s))
    events = await store.events(result.run_id)
    attempts = [e for e in events if getattr(e, "step_id", None) == "think" and e.kind in
                ("step_retrying", "step_failed")]
    assert len(attempts) == 3 and all(e.usage.completion_tokens for e in attempts)
    outcome = holder["s"].outcome("think")
    assert outcome.status == "failed"
    (think,) = [s for s in result.steps if s.id == "think"]
    assert (outcome.usage.prompt_tokens, outcome.usage.completion_tokens) == (
        think.prompt_tokens, think.completion_tokens) == (
        result.usage.prompt_tokens, result.usage.completion_tokens)
