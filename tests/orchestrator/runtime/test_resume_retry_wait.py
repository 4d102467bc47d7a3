"""A run stopped during a step's retry back-off (killed, or cancelled) and resumed at once
waits out what is left of that back-off (a server's Retry-After included) before the
step's next attempt: a resume, often a supervisor's restart, asked the server again at
once."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.runtime import events as ev
from orchestrator.runtime.durable import resume
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.test_retry_after import Busy

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def busy_fake(retry_after_s: float, busy: int) -> Busy:
    """Busy on the wall clock: the tests compare its starts with the trace's times."""
    return Busy(retry_after_s=retry_after_s, busy=busy, clock=time.time)


def workflow(fake: Busy) -> Workflow:
    wf = Workflow.from_yaml_text(yaml.safe_dump({"name": "t", "steps": [
        {"id": "a", "kind": "tool", "tool": "calc", "args": {},
         "retry": {"max_attempts": 3, "initial_backoff_s": 0, "jitter": 0}}]}))
    wf.register_executor("tool", fake)
    return wf


async def stopped_in_back_off(retry_after_s: float,
                              killed: bool = True) -> tuple[Workflow, list[Any]]:
    """A run's events when it stopped in its step's back-off: cancelled there (as Ctrl-C
    does), or, killed, cut after the step_retrying."""
    wf = workflow(busy_fake(retry_after_s=retry_after_s, busy=3))
    store = MemoryStore()
    holder: dict[str, Any] = {}

    def cancel_in_back_off(batch: Any) -> None:
        if any(e.kind == "step_retrying" for e in batch):
            holder["s"].cancel()

    result = await wf.run(hooks=[StoreHook(store), cancel_in_back_off],
                          on_scheduler=lambda s: holder.__setitem__("s", s))
    assert result.status == "cancelled"
    events = await store.events(result.run_id)
    if killed:
        events = events[:next(i for i, e in enumerate(events) if e.kind == "step_retrying") + 1]
    return wf, events


@pytest.mark.parametrize("killed", [True, False])
async def test_a_resume_waits_out_the_rest_of_the_back_off(killed: bool) -> None:
    wf, kept = await stopped_in_back_off(retry_after_s=0.6, killed=killed)
    (retrying,) = [e for e in kept if e.kind == "step_retrying"]
    assert retrying.delay_s == 0.6
    fake = busy_fake(retry_after_s=0.6, busy=0)
    wf.registry.executors["tool"] = fake
    result = await resume(kept, registry=wf.registry, hooks=[StoreHook(MemoryStore())])
    assert result.ok, result.error
    assert fake.starts[0] >= retrying.ts + 0.6


async def test_a_back_off_over_by_the_resume_is_not_waited_again() -> None:
    wf, kept = await stopped_in_back_off(retry_after_s=0.6)
    old = kept[-1]
    assert old.kind == "step_retrying"
    # the run stopped ten seconds ago: its back-off is long over
    kept[-1] = ev.StepRetrying(**{**old.model_dump(), "ts": old.ts - 10})
    fake = busy_fake(retry_after_s=0.6, busy=0)
    wf.registry.executors["tool"] = fake
    t0 = time.time()
    assert (await resume(kept, registry=wf.registry)).ok
    assert fake.starts[0] - t0 < 0.5


async def test_a_clock_set_back_waits_no_longer_than_the_back_off() -> None:
    wf, kept = await stopped_in_back_off(retry_after_s=0.3)
    old = kept[-1]
    assert old.kind == "step_retrying"
    # written by a host whose clock was an hour ahead
    kept[-1] = ev.StepRetrying(**{**old.model_dump(), "ts": old.ts + 3600})
    fake = busy_fake(retry_after_s=0.3, busy=0)
    wf.registry.executors["tool"] = fake
    t0 = time.time()
    assert (await resume(kept, registry=wf.registry)).ok
    assert fake.starts[0] - t0 < 2


async def test_a_resume_killed_while_it_waits_out_the_back_off_leaves_it_due() -> None:
    """A resumed attempt writes its step_started, then waits out the rest of the back-off:
    killed in that wait, the next resume waited nothing (it read the step_started as the
    attempt made) and asked the server at once."""
    wf, kept = await stopped_in_back_off(retry_after_s=0.6)
    wf.registry.executors["tool"] = busy_fake(retry_after_s=0.6, busy=0)
    store = MemoryStore()
    assert (await resume(kept, registry=wf.registry, hooks=[StoreHook(store)])).ok
    resumed = await store.events(kept[0].run_id)
    cut = next(i for i, e in enumerate(resumed) if e.kind == "step_started")
    # killed in the wait, just after the step_retrying was written: all of it is left
    old = kept[-1]
    assert old.kind == "step_retrying"
    now = time.time()
    events = [*kept[:-1], ev.StepRetrying(**{**old.model_dump(), "ts": now}),
              *resumed[:cut + 1]]
    fake = busy_fake(retry_after_s=0.6, busy=0)
    wf.registry.executors["tool"] = fake
    assert (await resume(events, registry=wf.registry)).ok
    assert fake.starts[0] >= now + 0.6
