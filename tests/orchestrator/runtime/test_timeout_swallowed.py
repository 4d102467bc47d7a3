"""A step's attempt timed out when its ``timeout_s`` passed and cancelled it, whatever the
tool did then: an async tool that swallowed its cancellation and returned late was
recorded as succeeded (after 2 s on a 0.5 s timeout). And a ``TimeoutError`` a tool
raises itself, before the deadline, is the tool's own error (retried as such), not
"timed out after" the step's timeout."""

from __future__ import annotations

import time

import anyio
import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio

FLOW = """\
name: t
steps:
  - id: slow
    kind: tool
    tool: stubborn
    args: {}
    timeout_s: 0.2
    retry: {max_attempts: 1}
"""


async def test_a_tool_that_swallows_its_cancellation_still_timed_out() -> None:
    wf = Workflow.from_yaml_text(FLOW)
    swallowed = []

    async def stubborn() -> str:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            try:
                await anyio.sleep(0.05)
            except anyio.get_cancelled_exc_class():
                swallowed.append(1)  # and goes on, as a badly written tool does
        return "late"

    wf.register_tool(stubborn)
    result = await wf.run({})
    assert swallowed  # it was cancelled, and ignored it
    assert result.status == "failed" and result.output is None
    step = {s.id: s for s in result.steps}["slow"]
    assert step.status == "failed" and step.error == "step 'slow' timed out after 0.2s"


async def test_a_tools_own_timeout_error_keeps_its_message() -> None:
    wf = Workflow.from_yaml_text(FLOW.replace("timeout_s: 0.2", "timeout_s: 30"))
    calls = []

    def stubborn() -> str:
        calls.append(1)
        raise TimeoutError("the upstream API gave up")

    wf.register_tool(stubborn)
    result = await wf.run({})
    step = {s.id: s for s in result.steps}["slow"]
    assert step.status == "failed" and "the upstream API gave up" in (step.error or "")
    assert "timed out after 30s" not in (step.error or "") and calls == [1]
