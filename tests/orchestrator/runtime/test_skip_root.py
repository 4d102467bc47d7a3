"""A step skipped two hops or more from a failure names the failed step, not only the
skipped dependency it waited on: in its reason (the run's summary) and in its
`step_skipped` event's optional `root_step`, which the trace store keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime import events as ev
from orchestrator.runtime.state import RunState, Status

pytestmark = pytest.mark.anyio

CHAIN = """\
name: chain
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1/0"}}
  - {id: ok, kind: tool, tool: calc, args: {expression: "1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.ok.output} + ${steps.a.output}"}}
  - id: m
    kind: map
    over: [1, 2]
    step: {kind: tool, tool: calc, args: {expression: "${item} + ${steps.b.output}"}}
  - {id: c, kind: tool, tool: calc, args: {expression: "${steps.m.output}"}}
"""


def test_the_state_names_the_root_of_a_skip_chain() -> None:
    s = RunState()
    for sid, deps in [("a", []), ("b", ["a"]), ("c", ["b"]), ("d", ["c"])]:
        s.add(sid, deps)
    s.take_ready()
    s.start("a")
    s.fail("a", "boom")
    got = {k.step_id: (k.reason, k.cause_step, k.root_step) for k in s.skipped}
    # c said "dependency 'b' did not succeed", d "dependency 'c' did not succeed"
    assert got == {"b": ("dependency 'a' did not succeed", "a", "a"),
                   "c": ("step 'a' failed (via 'b')", "b", "a"),
                   "d": ("step 'a' failed (via 'c')", "c", "a")}


def test_a_cancelled_root_is_named_as_cancelled() -> None:
    s = RunState()
    for sid, deps in [("a", []), ("b", ["a"]), ("c", ["b"])]:
        s.add(sid, deps)
    s.take_ready()
    s.start("a")
    s.cancel("a")
    assert s.status("c") is Status.SKIPPED
    assert [k.reason for k in s.skipped] == ["dependency 'a' cancelled",
                                             "step 'a' was cancelled (via 'b')"]


def test_a_branch_skip_has_no_root() -> None:
    s = RunState()
    for sid, deps in [("br", []), ("x", ["br"]), ("y", ["x"])]:
        s.add(sid, deps)
    s.take_ready()
    s.start("br")
    s.exclude(["x"])
    s.succeed("br", {"taken": []})
    assert [(k.step_id, k.root_step) for k in s.skipped] == [("x", None), ("y", None)]


class _Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)


async def test_the_run_and_its_skip_events_name_the_failed_step() -> None:
    rec = _Recorder()
    result = await Workflow.from_yaml_text(CHAIN).run(hooks=[rec])
    errors = {s.id: s.error for s in result.steps if s.status == "skipped"}
    assert errors == {"b": "dependency 'a' did not succeed",
                      "m": "step 'a' failed (via 'b')", "c": "step 'a' failed (via 'm')"}
    skips = {e.step_id: (e.cause_step, e.root_step) for e in rec.events
             if isinstance(e, ev.StepSkipped)}
    assert skips == {"b": ("a", "a"), "m": ("b", "a"), "c": ("m", "a")}


def test_an_old_skip_event_without_root_step_still_reads() -> None:
    old = {"kind": "step_skipped", "run_id": "r", "seq": 3, "ts": 1.0, "step_id": "c",
           "reason": "dependency 'b' did not succeed", "cause_step": "b"}
    event = ev.EVENT_ADAPTER.validate_python(old)
    assert isinstance(event, ev.StepSkipped) and event.root_step is None
