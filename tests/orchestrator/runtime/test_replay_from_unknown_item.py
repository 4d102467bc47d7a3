"""A fork from a step the recorded run has not (`--from each[9]` of a map whose run had 3
items) says there is no such step, naming the ones it had; it said the step "was added at
run time by 'each'" and suggested `--set each[9].output=...`, for an item that never
was. Nothing is recorded."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import PonderError
from orchestrator.runtime.durable import replay
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

MAPPED = """\
name: mapped
inputs:
  items: {type: array, default: [p, q, r]}
steps:
  - {id: each, kind: map, over: "${inputs.items}", step: {kind: tool, tool: calc,
     args: {expression: "1 + 1"}}}
  - {id: after, kind: tool, tool: calc, args: {expression: "2 + 2"}, after: [each]}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("items", "from_step", "had"), [
    (["p", "q", "r"], "each[9]", "the map 'each' had 3 items: each[0], each[1], each[2]"),
    (["p", "q", "r"], "each.x", "the map 'each' had 3 items: each[0], each[1], each[2]"),
    (list(range(7)), "each[9]",
     "the map 'each' had 7 items: each[0], each[1], each[2], each[3], each[4], ..."),
    ([], "each[0]", "the map 'each' had no items"),
])
async def test_a_fork_from_an_item_the_map_did_not_have(
        items: list[object], from_step: str, had: str) -> None:
    store = MemoryStore()
    ran = await Workflow.from_yaml_text(MAPPED).run({"items": items}, hooks=[StoreHook(store)])
    assert ran.ok, ran.error
    with pytest.raises(PonderError) as info:
        await replay(await store.events(ran.run_id), hooks=[StoreHook(store)],
                     from_step=from_step)
    assert str(info.value) == (
        f"cannot fork from {from_step!r}: the recorded run has no such step ({had}); a "
        "fork starts at a step of the workflow: --from each runs 'each' again")
    assert [r.id for r in await store.list_runs()] == [ran.run_id]


async def test_a_fork_from_an_item_the_map_had_names_the_map() -> None:
    store = MemoryStore()
    ran = await Workflow.from_yaml_text(MAPPED).run(hooks=[StoreHook(store)])
    with pytest.raises(PonderError) as info:
        await replay(await store.events(ran.run_id), from_step="each[2]")
    assert str(info.value).startswith("cannot fork from 'each[2]': it was added at run time "
                                      "by 'each'")
