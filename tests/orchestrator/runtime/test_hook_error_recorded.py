"""A hook that raises stops the run (nothing may be acted on that was not recorded), and
the hooks before it, which have every event, learn that the run stopped: a
``run_finished`` with status ``cancelled``, which a resume continues. The trace store
ahead of a failing hook of the user's kept the run as ``running`` with no end, so that
`ponder runs`, `show` and the viewer said it was running for as long as the process
lived (a notebook's kernel: hours)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime.durable import resume
from orchestrator.store import StoreHook, TraceStore

pytestmark = pytest.mark.anyio

CHAIN = """\
name: chain
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
  - {id: c, kind: tool, tool: calc, args: {expression: "${steps.b.output} + 1"}}
outputs:
  c: {from: "${steps.c.output}"}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Breaks:
    """A hook of the user's that raises once it has seen ``after`` batches."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.seen: list[str] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        if self.after == 0:
            raise RuntimeError("the dashboard is down")
        self.after -= 1
        self.seen += [e.kind for e in batch]


async def test_the_store_before_a_failing_hook_records_the_run_stopped(
        trace_store: TraceStore) -> None:
    hook = Breaks(after=1)
    with pytest.raises(RuntimeError, match="the dashboard is down"):
        await Workflow.from_yaml_text(CHAIN).run(hooks=[StoreHook(trace_store), hook],
                                                  run_id="stopped")
    events = await trace_store.events("stopped")
    assert events[-1].kind == "run_finished"
    assert events[-1].status == "cancelled"
    assert events[-1].error == ("the run stopped: event hook 2 of 2 (Breaks) raised "
                                "RuntimeError: the dashboard is down")
    assert [e.seq for e in events] == list(range(len(events)))
    assert "run_finished" not in hook.seen  # (the failing hook and those after: nothing)
    [info] = [r for r in await trace_store.list_runs() if r.id == "stopped"]
    assert info.status == "cancelled"

    # a resume continues it, as any cancelled run's
    again = await resume(events, hooks=[StoreHook(trace_store)])
    assert again.ok, again.error
    assert again.output == {"c": 4}


async def test_a_failing_first_hook_has_no_hook_before_it(trace_store: TraceStore) -> None:
    hook = Breaks(after=1)
    with pytest.raises(RuntimeError, match="the dashboard is down"):
        await Workflow.from_yaml_text(CHAIN).run(hooks=[hook, StoreHook(trace_store)],
                                                  run_id="first")
    events = await trace_store.events("first")
    assert events and all(e.kind != "run_finished" for e in events)
