"""An exported run carries its child runs (the runs its steps started: sub-workflows,
fan-outs' children, plans' actions, and theirs), and an import restores them: resuming
the imported run needs them, to reuse what a child run had finished. Without them, a
resume in the store imported into ran a sub-workflow's finished steps again.

A document of a run without child runs is version 1, as before; one with some is
version 2, which an older Ponder refuses rather than import the run without them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import EventConflict, InvalidTrace
from orchestrator.runtime.durable import recorded_children, resume
from orchestrator.store import MemoryStore, StoredEvent, StoreHook, TraceStore
from tests.store.conftest import dumped, full_run, recorded_with_child

pytestmark = pytest.mark.anyio


async def _family(store: TraceStore) -> None:
    """``top``; its sub-workflow's run ``sub`` and that one's own ``subsub``; a fork of
    ``top`` (a run of its own) and an unrelated run."""
    await store.append(full_run("top", started=1_000.0))
    await store.append(full_run("sub", started=1_001.0, parent_run_id="top", parent_attempt=1))
    await store.append(full_run("subsub", started=1_002.0, parent_run_id="sub",
                                parent_attempt=2, status=None))
    await store.append(full_run("fork", started=1_003.0, parent_run_id="top"))
    await store.append(full_run("other", started=1_004.0))


async def test_an_export_holds_the_child_runs_and_an_import_restores_them(
        store: TraceStore) -> None:
    await _family(store)
    family = ("top", "sub", "subsub")
    before = {rid: dumped(await store.events(rid)) for rid in family}
    listed = await store.list_runs()
    doc = json.loads(json.dumps(await store.export_run("top")))

    assert doc["format"] == "ponder.trace" and doc["version"] == 2
    assert doc["run"]["id"] == "top" and len(doc["events"]) == len(before["top"])
    assert [c["run"]["id"] for c in doc["children"]] == ["sub", "subsub"]  # not the fork
    assert [len(c["events"]) for c in doc["children"]] == [len(before["sub"]),
                                                            len(before["subsub"])]

    assert await store.delete_runs(list(family)) == 3
    assert await store.import_run(doc) == "top"
    assert {rid: dumped(await store.events(rid)) for rid in family} == before
    assert await store.list_runs() == listed

    elsewhere = MemoryStore()
    assert await elsewhere.import_run(doc) == "top"
    assert {rid: dumped(await elsewhere.events(rid)) for rid in family} == before
    assert [r.id for r in await elsewhere.list_runs()] == ["subsub", "sub", "top"]


async def test_a_child_run_exported_alone_holds_its_own(store: TraceStore) -> None:
    await _family(store)
    doc = await store.export_run("sub")
    assert doc["version"] == 2 and [c["run"]["id"] for c in doc["children"]] == ["subsub"]


async def test_a_run_without_child_runs_is_exported_as_before(store: TraceStore) -> None:
    """Version 1 and no ``children``: an older Ponder still reads it."""
    await _family(store)
    for rid in ("other", "subsub", "fork"):
        doc = await store.export_run(rid)
        assert doc["version"] == 1 and "children" not in doc, rid
        assert set(doc) == {"format", "version", "run", "events"}


async def test_a_child_run_stored_already_imports_nothing(store: TraceStore) -> None:
    source = MemoryStore()
    await _family(source)
    doc = await source.export_run("top")
    await store.append(full_run("subsub", started=1_002.0, parent_run_id="sub",
                                parent_attempt=2))
    with pytest.raises(EventConflict) as info:
        await store.import_run(doc)
    assert info.value.run_id == "subsub"
    assert [r.id for r in await store.list_runs()] == ["subsub"]
    assert await store.events("top") == [] and await store.events("sub") == []


async def test_malformed_child_runs_are_refused_and_nothing_is_stored(
        store: TraceStore) -> None:
    source = MemoryStore()
    await _family(source)
    doc = json.loads(json.dumps(await source.export_run("top")))
    sub, subsub = doc["children"]
    dup_seq = {**sub, "events": [*sub["events"], sub["events"][-1]]}
    stray = {"run": {"id": "fork"},
             "events": json.loads(json.dumps(dumped(await source.events("fork"))))}
    cases: list[tuple[Any, str]] = [
        ("x", "children: expected a list of runs"),
        (["x"], "children[0]: expected a JSON object, got str"),
        ([{"run": {"id": "sub"}}], "children[0].events: expected a non-empty list"),
        ([dup_seq], f"children[0].events[{len(sub['events'])}].seq: "),
        ([{**sub, "run": {"id": "zzz"}}], "children[0].run.id: 'zzz' differs"),
        ([subsub, sub], "children[0].events: run 'subsub' is not a child run of a run "
                        "before it in the document"),
        ([sub, sub], "children[1].events: run 'sub' appears twice"),
        ([stray], "children[0].events: run 'fork' is not a child run"),
    ]
    for children, fragment in cases:
        with pytest.raises(InvalidTrace) as info:
            await store.import_run({**doc, "children": children})
        assert fragment in str(info.value), (fragment, str(info.value))
        assert await store.list_runs() == [], fragment


# -- a resume after the import ------------------------------------------------------------

SUB = """\
name: sub
steps:
  - {id: c1, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: c2, kind: tool, tool: calc, args: {expression: "2 + 2"}, after: [c1]}
"""
MAIN = "name: main\nsteps:\n  - {id: w, kind: workflow, workflow: sub.yaml}\n"


def _started(events: list[StoredEvent], step_id: str) -> int:
    return sum(1 for e in events if e.kind == "step_started"
               and getattr(e, "step_id", None) == step_id)


async def test_a_run_resumed_where_it_was_imported_reuses_its_child_runs_steps(
        tmp_path: Path, store: TraceStore) -> None:
    whole, recorder, registry, child_id = await recorded_with_child(
        tmp_path, MAIN, {"sub.yaml": SUB})
    assert whole.status == "succeeded"
    # killed while the sub-workflow's second step ran: c1 had finished, c2 had not
    parent = await recorder.events(whole.run_id)
    cut = next(e.seq for e in parent if e.kind == "step_started")
    child = await recorder.events(child_id)
    child_cut = next(e.seq for e in child if e.kind == "step_started"
                     and getattr(e, "step_id", None) == "c2")
    original = MemoryStore()
    await original.append([e for e in parent if e.seq <= cut])
    await original.append([e for e in child if e.seq <= child_cut])

    doc = json.loads(json.dumps(await original.export_run(whole.run_id)))
    await store.import_run(doc)
    resumed = await resume(await store.events(whole.run_id), registry=registry,
                           hooks=[StoreHook(store)], children=recorded_children(store))
    assert resumed.status == "succeeded"
    runs = [r.id for r in await store.list_runs() if r.id != whole.run_id]
    assert runs == [child_id]  # the child run went on; no new one was started
    events = await store.events(child_id)
    assert _started(events, "c1") == 1  # only the attempt before the kill
    assert _started(events, "c2") == 2
