"""A run recorded before Ponder refused a boolean where a number belongs, whose boolean
is on a top-level ``tool`` step (``timeout_s: true``, which ran with a 1 s timeout). The
error's path names the step kind's tag (``steps.0.tool.timeout_s``), and a tool step has
a field named like that tag (``tool``: the tool's name): the boolean was looked for in
that string, not found, and the run could be neither resumed nor replayed ("does not
read as a workflow of this version of Ponder"). It now reads as it ran."""

from __future__ import annotations

import pytest

from orchestrator.runtime.durable import replay, resume
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.test_resume_recorded_booleans import _old_trace

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_tool_steps_boolean_for_a_number_resumes_as_it_ran() -> None:
    events = await _old_trace()
    spec = dict(events[0].spec)
    spec["steps"] = [{**spec["steps"][0], "timeout_s": True}, *spec["steps"][1:]]
    events[0] = events[0].model_copy(update={"spec": spec})
    store = MemoryStore()
    await store.append(events)
    resumed = await resume(events, hooks=[StoreHook(store)])
    assert resumed.ok, resumed.error
    started = (await store.events(resumed.run_id))[len(events)]
    assert started.kind == "run_started"
    assert started.spec["steps"][0]["timeout_s"] == 1
    assert started.spec["steps"][0]["tool"] == "calc"
    assert started.spec["steps"][1]["max_tokens"] == 1
    assert (await replay(events, from_step="b")).ok
