"""The tool executor: a tool's return value, exceptions and hangs are the step's, never
the run's."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestrator import Workflow
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
