"""A retried step's failed attempts spent tokens too: the run counts them, its trace says
them (step_retrying.usage), and a resume and the trace's fold count them alike."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

# each attempt decodes for 0.3 s of its 2 s of tokens, then times out (retryable)
SLOW = """\
name: slow
models:
  default: {backend: simulated, options: {decode_s_per_token: 0.01}}
steps:
  - id: think
    kind: llm
    prompt: "think hard"
    max_tokens: 200
    timeout_s: 0.3
    retry: {max_attempts: 3, initial_backoff_s: 0}
  - {id: after, kind: tool, tool: calc, args: {expression: "1 + 1"}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_tokens_of_a_retried_attempt_count_in_the_run() -> None:
    store = MemoryStore()
    result = await Workflow.from_yaml_text(SLOW).run(hooks=[StoreHook(store)])
    assert not result.ok
    events = await store.events(result.run_id)
    retried = [e for e in events if e.kind == "step_retrying"]
    failed = [e for e in events if e.kind == "step_failed"]
    assert len(retried) == 2 and len(failed) == 1
    # each timed-out attempt had decoded some of its tokens before it was stopped
    assert all(e.usage.completion_tokens > 0 and e.usage.prompt_tokens > 0 for e in retried)
    spent = [e.usage for e in [*retried, *failed]]
    total = (sum(u.prompt_tokens for u in spent), sum(u.completion_tokens for u in spent))
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == total
    # the trace's fold (ponder show) gives the step every attempt's tokens
    record = await store.read_run(result.run_id)
    assert record is not None
    (think,) = [s for s in record.steps if s.id == "think"]
    assert (think.prompt_tokens, think.completion_tokens) == total


async def test_a_resumed_run_counts_the_retried_attempts_of_its_past_once() -> None:
    store = MemoryStore()
    first = await Workflow.from_yaml_text(SLOW).run(hooks=[StoreHook(store)])
    events = await store.events(first.run_id)
    # cut after the second failed attempt: resume runs `think` once more
    cut = next(i for i, e in enumerate(events) if e.kind == "step_retrying" and e.attempt == 2)
    kept = events[:cut + 1]
    before = sum(e.usage.completion_tokens for e in kept if e.kind == "step_retrying")
    assert before > 0
    resumed = await resume(kept, hooks=[StoreHook(MemoryStore())])
    again = resumed.usage.completion_tokens - before
    assert 0 < again < before  # the resumed attempt's own, and the past's, once each
