"""The tool executor: a tool's return value, exceptions and hangs are the step's, never
the run's."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.spec.base import RetryPolicy
from orchestrator.spec.models import ToolStep
from orchestrator.store import StoreHook, open_store

pytestmark = pytest.mark.anyio


@dataclasses.dataclass
class _Point:
    x: int
    y: int


def _circular() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


async def _async_gen() -> Any:
    yield 1


#: tool return value -> the step's output, or None where the step must fail
_RETURNS: list[tuple[str, Any, Any]] = [
    ("an_object", object(), None),
    ("infinity", float("inf"), None),
    ("nan", float("nan"), None),
    ("bad_bytes", b"\xff\x00", None),
    ("circular", _circular(), None),
    ("async_gen", _async_gen(), None),
    ("tuple", (1, 2), [1, 2]),
    ("dataclass", _Point(1, 2), {"x": 1, "y": 2}),
    ("int_keys", {1: "a"}, {"1": "a"}),
]


async def test_a_tool_returning_what_json_cannot_hold_fails_its_step_not_the_run() -> None:
    wf = Workflow("returns")
    for name, value, _ in _RETURNS:
        wf.register_tool(lambda value=value: value, name)
        wf.tool(name, name)
    store = await open_store("memory://")
    try:
        result = await wf.run(hooks=[StoreHook(store)])  # the store writes outputs as JSON
        stored = {e.step_id: e.kind for e in await store.events(result.run_id)
                  if e.kind in ("step_succeeded", "step_failed")}
    finally:
        await store.close()
    by_id = {s.id: s for s in result.steps}
    for name, _, expected in _RETURNS:
        step = by_id[name]
        if expected is None:
            assert step.status == "failed", (name, step.output)
            assert f"tool {name!r} returned a value that is not JSON" in (step.error or "")
            assert stored[name] == "step_failed"
        else:
            assert step.status == "succeeded" and step.output == expected, (name, step)
            assert stored[name] == "step_succeeded"


async def test_a_sync_tool_that_hangs_times_out_at_its_timeout() -> None:
    release = threading.Event()

    def hang() -> str:
        release.wait(30)
        return "late"

    wf = Workflow("hang")
    wf.register_tool(hang)
    wf.add(ToolStep(id="h", tool="hang", timeout_s=0.2, retry=RetryPolicy(max_attempts=1)))
    wf.tool("other", "calc", expression="1 + 1")
    start = time.monotonic()
    try:
        result = await wf.run()
    finally:
        release.set()
    assert time.monotonic() - start < 5  # it waited for the thread: the tool's 30 s
    by_id = {s.id: s for s in result.steps}
    assert by_id["h"].status == "failed" and "timed out after 0.2s" in (by_id["h"].error or "")
    assert by_id["other"].output == 2


def _exits() -> None:
    raise SystemExit(3)


def _interrupts() -> None:
    raise KeyboardInterrupt


async def _exits_async() -> None:
    raise SystemExit(4)


async def test_a_tool_raising_system_exit_fails_its_step_not_the_process() -> None:
    wf = Workflow("exits")
    for fn in (_exits, _interrupts, _exits_async):
        wf.register_tool(fn)
        wf.tool(fn.__name__.strip("_"), fn.__name__)
    wf.tool("other", "calc", expression="1 + 1")
    result = await wf.run()
    errors = {s.id: s.error for s in result.steps}
    assert errors["exits"] == "tool '_exits' raised SystemExit: 3"
    assert errors["interrupts"] == "tool '_interrupts' raised KeyboardInterrupt: "
    assert errors["exits_async"] == "tool '_exits_async' raised SystemExit: 4"
    assert {s.id: s.output for s in result.steps}["other"] == 2


async def test_sync_tools_reuse_threads_and_a_hung_one_keeps_its_own() -> None:
    """Sync tools run on reused daemon threads; a call abandoned by its timeout keeps its
    thread, and later calls run on others."""
    release = threading.Event()
    seen: list[threading.Thread] = []

    def where() -> str:
        seen.append(threading.current_thread())
        return "ok"

    def hang() -> str:
        seen.append(threading.current_thread())
        release.wait(30)
        return "late"

    wf = Workflow("threads")
    wf.register_tool(where)
    wf.register_tool(hang)
    wf.tool("a0", "where")
    for i in range(1, 10):  # one after another
        wf.add(ToolStep(id=f"a{i}", tool="where", after=[f"a{i - 1}"]))
    wf.add(ToolStep(id="h", tool="hang", after=["a9"], timeout_s=0.2,
                    retry=RetryPolicy(max_attempts=1)))
    wf.add(ToolStep(id="c", tool="where", after=["h"]))
    again = Workflow("after")
    again.register_tool(where)
    again.tool("d", "where")
    try:
        result = await wf.run()
        assert (await again.run()).ok  # while `hang` still holds its thread
    finally:
        release.set()
    by_id = {s.id: s for s in result.steps}
    assert by_id["h"].status == "failed" and by_id["c"].status == "skipped"
    *calls, h, d = seen
    # reused: a worker goes back to the pool just after handing over its result, so a
    # call may now and then find it not back yet and start one more thread (not ten)
    assert len(calls) == 10 and len(set(calls)) <= 3, calls
    assert d is not h  # not the thread `hang` still held
    assert all(t.daemon and t.name == "ponder tool" for t in seen)


async def test_a_tool_raising_a_connection_or_timeout_error_is_retried() -> None:
    """A network tool's transient failure is retried like a backend's (the README says
    connection errors are); any other exception of a tool is final."""
    calls: dict[str, int] = {}

    def flaky(kind: str) -> str:
        calls[kind] = calls.get(kind, 0) + 1
        if calls[kind] < 3:
            raise {"conn": ConnectionResetError, "time": TimeoutError,
                   "value": ValueError}[kind]("transient")
        return f"{kind} ok"

    wf = Workflow("flaky")
    wf.register_tool(flaky)
    for kind in ("conn", "time", "value"):
        wf.add(ToolStep(id=kind, tool="flaky", args={"kind": kind},
                        retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01)))
    result = await wf.run()
    steps = {s.id: s for s in result.steps}
    assert (steps["conn"].output, steps["conn"].attempts) == ("conn ok", 3)
    assert (steps["time"].output, steps["time"].attempts) == ("time ok", 3)
    assert (steps["value"].status, steps["value"].attempts) == ("failed", 1)
    assert steps["value"].error == "tool 'flaky' raised ValueError: transient"
