"""Forks (`replay --from STEP`): the fork's own trace holds every output it used, and
`--set` is checked against the workflow before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import PonderError
from orchestrator.runtime.durable import replay
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.test_durable_resume import ELSEWHERE

pytestmark = pytest.mark.anyio

CHAIN = """\
name: chain
models:
  default: {backend: simulated}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "2 + 3"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} * 10"}}
  - {id: c, kind: tool, tool: calc, args: {expression: "${steps.b.output} + 1"}}
  - id: j
    kind: llm
    prompt: "a number"
    output_schema: {type: object, properties: {n: {type: integer}}, required: [n]}
outputs:
  c: ${steps.c.output}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _run(tmp_path: Path, store: MemoryStore) -> str:
    wf_file = tmp_path / "chain.yaml"
    wf_file.write_text(CHAIN)
    result = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    assert result.ok, result.error
    return result.run_id


def _started(events: list[Any]) -> set[str]:
    return {e.step_id for e in events if e.kind == "step_started"}


async def test_a_fork_records_the_outputs_it_takes_from_its_parent(tmp_path: Path) -> None:
    store = MemoryStore()
    parent = await _run(tmp_path, store)
    fork = await replay(await store.events(parent), hooks=[StoreHook(store)], from_step="c")
    assert fork.ok and fork.output == {"c": 51}
    events = await store.events(fork.run_id)
    assert _started(events) == {"c"}  # a and b were served, not run
    served = {e.step_id: e for e in events if e.kind == "step_succeeded"}
    assert served["a"].output == 5 and served["b"].output == 50
    assert served["b"].meta["replayed_from"] == parent
    record = await store.read_run(fork.run_id)
    assert {s.id: s.status for s in record.steps}["b"] == "succeeded"

    # the fork stands alone: it replays, and forks again without running a or b
    await store.delete_runs([parent])
    again = await replay(events, hooks=[StoreHook(store)])
    assert again.ok and again.output == {"c": 51}
    refork = await replay(events, hooks=[StoreHook(store)], from_step="c")
    assert refork.ok and _started(await store.events(refork.run_id)) == {"c"}


async def test_set_reruns_what_depends_on_the_replaced_step(tmp_path: Path) -> None:
    store = MemoryStore()
    parent = await _run(tmp_path, store)
    fork = await replay(await store.events(parent), hooks=[StoreHook(store)], from_step="c",
                        set_outputs={"a": 7})
    assert fork.ok and fork.output == {"c": 71}
    events = await store.events(fork.run_id)
    assert _started(events) == {"b", "c"}
    set_event = next(e for e in events if e.kind == "step_succeeded" and e.step_id == "a")
    assert set_event.output == 7


@pytest.mark.parametrize(("sets", "message"), [
    ({"nosuch": 1}, "--set nosuch.output: no step 'nosuch' in workflow 'chain'"),
    ({"j": {"n": "x"}}, "--set j.output={\"n\": \"x\"}: does not match the step's "
                        "output_schema at $.n: 'x' is not of type 'integer'"),
])
async def test_a_bad_set_is_refused_before_anything_runs(tmp_path: Path, sets: dict[str, Any],
                                                        message: str) -> None:
    store = MemoryStore()
    parent = await _run(tmp_path, store)
    with pytest.raises(PonderError) as info:
        await replay(await store.events(parent), hooks=[StoreHook(store)], from_step="c",
                     set_outputs=sets)
    assert message in str(info.value)
    assert len(await store.list_runs()) == 1


PLANNED = """\
name: planned
steps:
  - id: p
    kind: plan
    planner: static
    goal: fifty
    options:
      output: y
      steps:
        - {id: x, kind: tool, tool: calc, args: {expression: "2 + 3"}}
        - {id: y, kind: tool, tool: calc, args: {expression: "${steps.x.output} * 10"}}
  - {id: m, kind: map, over: [1, 2], step: {kind: tool, tool: calc, args: {expression: "${item} + 1"}}}
outputs:
  p: ${steps.p.output}
  m: ${steps.m.output}
"""


async def _planned(tmp_path: Path, store: MemoryStore) -> list[Any]:
    wf_file = tmp_path / "planned.yaml"
    wf_file.write_text(PLANNED)
    result = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    assert result.ok, result.error
    return await store.events(result.run_id)


async def test_a_fork_from_a_plan_step_runs_the_steps_of_its_plan_again(tmp_path: Path) -> None:
    store = MemoryStore()
    events = await _planned(tmp_path, store)
    added = {s["id"] for e in events if e.kind == "graph_patched" and e.source_step == "p"
             for s in e.steps}
    assert added and not added & {"p", "x", "y"}  # the plan's steps get ids of their own
    fork = await replay(events, hooks=[StoreHook(store)], from_step="p")
    assert fork.ok and fork.output == {"p": 50, "m": [2, 3]}
    assert _started(await store.events(fork.run_id)) == {"p"} | added


@pytest.mark.parametrize("added", ["plan", "m[1]"])
async def test_a_fork_from_a_step_added_at_run_time_names_the_step_to_fork_from(
        tmp_path: Path, added: str) -> None:
    store = MemoryStore()
    events = await _planned(tmp_path, store)
    step_id = added if added == "m[1]" else next(
        s["id"] for e in events if e.kind == "graph_patched" and e.source_step == "p"
        for s in e.steps)
    owner = step_id[0]
    with pytest.raises(PonderError) as info:
        await replay(events, hooks=[StoreHook(store)], from_step=step_id)
    assert (f"cannot fork from {step_id!r}: it was added at run time by {owner!r}"
            in str(info.value))
    assert f"(--from {owner})" in str(info.value)
    assert len(await store.list_runs()) == 1


async def test_a_fork_gives_the_models_the_backend_its_parent_was_given() -> None:
    store = MemoryStore()
    parent = await Workflow.from_yaml_text(ELSEWHERE).run(hooks=[StoreHook(store)],
                                                          backend="simulated")
    assert parent.ok, parent.error
    fork = await replay(await store.events(parent.run_id), hooks=[StoreHook(store)],
                        from_step="b")
    assert fork.ok and fork.output == parent.output, fork.error
    events = await store.events(fork.run_id)
    assert _started(events) == {"b"}
    assert events[0].backend == "simulated" and events[0].parent_attempt is None


async def test_a_fork_with_other_inputs_runs_again_what_reads_them(tmp_path: Path) -> None:
    """Steps reading a changed input run again with it, and what depends on them, even
    outside --from's descendants (they were served from the parent with the old value)."""
    wf_file = tmp_path / "w.yaml"
    wf_file.write_text("""\
name: w
inputs:
  n: {type: integer}
  m: {type: integer, default: 100}
steps:
  - {id: t1, kind: tool, tool: calc, args: {expression: "${inputs.n} + 1"}}
  - {id: t2, kind: tool, tool: calc, args: {expression: "10"}}
  - {id: t3, kind: tool, tool: calc, args: {expression: "${steps.t1.output} + ${steps.t2.output}"}}
  - {id: t4, kind: tool, tool: calc, args: {expression: "${inputs.m} * 1"}}
outputs:
  t3: ${steps.t3.output}
  t4: ${steps.t4.output}
""")
    store = MemoryStore()
    parent = await Workflow.from_yaml(wf_file).run({"n": 1}, hooks=[StoreHook(store)])
    assert parent.output == {"t3": 12, "t4": 100}
    fork = await replay(await store.events(parent.run_id), hooks=[StoreHook(store)],
                        from_step="t2", inputs={"n": 5})
    assert fork.ok and fork.output == {"t3": 16, "t4": 100}, fork.error
    assert _started(await store.events(fork.run_id)) == {"t1", "t2", "t3"}  # t4 served
