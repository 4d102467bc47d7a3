"""The TraceStore contract, run on every backend: memory, SQLite, PostgreSQL (two drivers)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest

from orchestrator import ToolStep, Workflow
from orchestrator.runtime import events as ev
from orchestrator.store import (
    AmbiguousRunId,
    EventConflict,
    InvalidTrace,
    MemoryStore,
    RawEvent,
    RunFilter,
    RunNotFound,
    StoredEvent,
    StoreError,
    StoreHook,
    TraceStore,
    open_store,
)

pytestmark = pytest.mark.anyio

Dump = Callable[[list[StoredEvent]], list[dict[str, Any]]]


async def test_round_trip_every_kind(store: TraceStore, make_run: Any, as_json: Dump) -> None:
    events = make_run("r1", unknown_kind=True)
    await store.append(events[:1])
    await store.append(events[1:6])
    await store.append(events[6:])

    back = await store.events("r1")

    assert as_json(back) == as_json(events)
    assert [type(e) for e in back] == [type(e) for e in events]
    raw = next(e for e in back if isinstance(e, RawEvent))
    assert raw.kind == "future_kind" and raw.model_extra == {"answer": 42, "nested": {"k": ["v"]}}


async def test_events_come_back_in_seq_order(store: TraceStore, make_linear_run: Any) -> None:
    events = make_linear_run("r1", 10)
    await store.append(events[5:])
    await store.append(events[:5])

    assert [e.seq for e in await store.events("r1")] == list(range(10))
    assert [e.seq for e in await store.events("r1", after_seq=6)] == [7, 8, 9]
    assert await store.events("r1", after_seq=9) == []
    assert await store.events("nope") == []


async def test_events_of_some_kinds_only(store: TraceStore, make_linear_run: Any) -> None:
    events = make_linear_run("r1", 10)
    await store.append(events)
    ends = await store.events("r1", kinds=("run_started", "run_finished"))
    assert [(e.seq, e.kind) for e in ends] == [(0, "run_started"), (9, "run_finished")]
    assert [e.seq for e in await store.events("r1", after_seq=0,
                                              kinds=["run_started", "run_finished"])] == [9]
    steps = await store.events("r1", kinds={"step_succeeded"})
    assert steps and {e.kind for e in steps} == {"step_succeeded"}
    assert await store.events("r1", kinds=()) == []
    assert await store.events("r1", kinds=["no_such_kind"]) == []


async def test_events_come_a_page_at_a_time(store: TraceStore, make_linear_run: Any) -> None:
    events = make_linear_run("r1", 12)
    del events[5]  # a gap in the seqs
    await store.append(events[6:])
    await store.append(events[:6])
    await store.append(make_linear_run("r10", 4))  # a run whose id starts like it

    pages, after = [], None
    while page := await store.events_page("r1", after_seq=after, limit=4):
        pages.append([e.seq for e in page])
        after = page[-1].seq
    assert pages == [[0, 1, 2, 3], [4, 6, 7, 8], [9, 10, 11]]
    assert [e.model_dump() for e in await store.events_page("r1", limit=100)] == [
        e.model_dump() for e in await store.events("r1")
    ]
    assert [e.seq for e in await store.events_page("r1", after_seq=4, limit=2)] == [6, 7]
    assert [e.seq for e in await store.events_page("r1", after_seq=-5, limit=1)] == [0]
    for beyond in (11, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30):
        assert await store.events_page("r1", after_seq=beyond, limit=5) == [], beyond
    assert await store.events_page("nope", limit=5) == []
    for bad in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            await store.events_page("r1", limit=bad)


async def test_one_run_row_is_read_by_its_exact_id(store: TraceStore, make_run: Any) -> None:
    events = make_run("ab", status="failed", parent_run_id="top")
    await store.append(events[:-1])
    await store.append(make_run("abc"))
    running = await store.run_info("ab")
    assert running is not None and (running.id, running.status) == ("ab", "running")
    await store.append(events[-1:])
    rows = {r.id: r for r in await store.list_runs()}
    assert await store.run_info("ab") == rows["ab"]
    assert await store.run_info("abc") == rows["abc"]
    for missing in ("a", "abcd", "AB", "%", "", "a\x00b"):
        assert await store.run_info(missing) is None, missing
        assert await store.events_page(missing, limit=5) == [], missing


async def test_read_run_folds_the_events(store: TraceStore, make_run: Any) -> None:
    await store.append(make_run("r1", unknown_kind=True))

    run = await store.read_run("r1")

    assert (run.id, run.workflow, run.status, run.source) == ("r1", "wf", "succeeded", "wf.yaml")
    assert run.inputs == {"q": "why?", "n": 3} and run.output == {"answer": 42}
    assert (run.prompt_tokens, run.completion_tokens, run.duration_s) == (11, 7, 12.0)
    statuses = {s.id: (s.status, s.attempts) for s in run.steps}
    assert statuses == {
        "plan": ("succeeded", 2),
        "a": ("cancelled", 0),
        "b": ("failed", 1),
        "c": ("skipped", 0),
    }
    assert run.step("b").deps == ["plan"] and run.step("b").error == "boom"
    assert run.next_seq == 13


async def test_read_run_gives_declared_steps_their_dependencies(store: TraceStore) -> None:
    wf = Workflow("deps")
    wf.tool("a", "calc", expression="1")
    wf.tool("b", "calc", expression="${steps.a.output} + 1")
    wf.branch("br", [("steps.b.output > 1", ["big"])], default=["small"])
    wf.tool("big", "calc", expression="2")
    wf.tool("small", "calc", expression="3")
    wf.add(ToolStep(id="last", tool="calc", args={"expression": "4"}, after=["big"]))
    result = await wf.run(hooks=[StoreHook(store)])
    assert result.ok, result.error

    run = await store.read_run(result.run_id)

    expected = {"a": [], "b": ["a"], "br": ["b"], "big": ["br"], "small": ["br"],
                "last": ["big"]}  # fmt: skip
    assert {s.id: s.deps for s in run.steps} == expected
    assert {s.id: s.deps for s in result.steps} == expected


async def test_read_unknown_run_raises(store: TraceStore) -> None:
    with pytest.raises(RunNotFound, match="'ghost'"):
        await store.read_run("ghost")
    with pytest.raises(RunNotFound):
        await store.export_run("ghost")


async def test_a_run_is_found_by_the_start_of_its_id(store: TraceStore, make_run: Any) -> None:
    for rid in ("ab12cd", "ab12ef", "Ab99", "x%_y", "ab12"):
        await store.append(make_run(rid))
    assert await store.resolve_run_id("ab12") == "ab12"  # a whole id is itself
    assert await store.resolve_run_id("ab12c") == "ab12cd"
    assert await store.resolve_run_id("A") == "Ab99"  # case matters, on SQLite too
    assert await store.resolve_run_id("x%") == "x%_y"  # no LIKE wildcards
    with pytest.raises(AmbiguousRunId, match="'ab' is the start of several") as many:
        await store.resolve_run_id("ab")
    assert sorted(many.value.matches) == ["ab12", "ab12cd", "ab12ef"]
    for missing in ("abz", "%", "_b", ""):
        with pytest.raises(RunNotFound) as none:
            await store.resolve_run_id(missing)
        assert not isinstance(none.value, AmbiguousRunId)


async def test_run_row_follows_run_events(store: TraceStore, make_run: Any) -> None:
    events = make_run("r1", status="failed", parent_run_id="top")
    await store.append(events[:-1])

    [running] = await store.list_runs()
    assert (running.status, running.started_at, running.finished_at) == ("running", 1000.0, None)
    assert (running.n_steps, running.prompt_tokens) == (None, None)
    assert (running.parent_run_id, running.parent_step_id, running.source) == (
        "top",
        "p",
        "wf.yaml",
    )

    await store.append(events[-1:])
    [done] = await store.list_runs()
    assert (done.status, done.finished_at, done.duration_s, done.error) == (
        "failed",
        1012.0,
        12.0,
        "boom",
    )
    assert (done.prompt_tokens, done.completion_tokens, done.n_steps) == (11, 7, 4)

    resumed = ev.RunStarted(run_id="r1", seq=12, ts=2000.0, workflow="wf", inputs={},
                            resumed=True)  # fmt: skip
    await store.append([resumed])
    [again] = await store.list_runs()
    assert (again.status, again.started_at, again.finished_at, again.error) == (
        "running",
        1000.0,
        None,
        None,
    )


async def test_duplicate_seq_leaves_nothing_of_the_batch(
    store: TraceStore, make_linear_run: Any
) -> None:
    events = make_linear_run("r1", 6)
    await store.append(events[:3])
    other = make_linear_run("r2", 2)

    with pytest.raises(EventConflict) as info:
        await store.append([other[0], *events[3:], events[2]])

    assert (info.value.run_id, info.value.seq) == ("r1", 2)
    assert [e.seq for e in await store.events("r1")] == [0, 1, 2]
    assert await store.events("r2") == []
    [run] = await store.list_runs()
    assert (run.id, run.status) == ("r1", "running")


async def test_duplicate_within_a_batch_is_refused(store: TraceStore, make_linear_run: Any) -> None:
    events = make_linear_run("r1", 4)
    with pytest.raises(EventConflict, match="twice"):
        await store.append([*events, events[1]])
    assert await store.events("r1") == []
    assert await store.list_runs() == []


async def test_unserializable_event_is_refused(store: TraceStore) -> None:
    bad = ev.StepSucceeded(run_id="r1", seq=1, step_id="s", attempt=1, output=object())
    good = ev.RunStarted(run_id="r1", seq=0, workflow="wf", inputs={})
    with pytest.raises(StoreError, match="JSON"):
        await store.append([good, bad])
    assert await store.events("r1") == []


@pytest.mark.parametrize(
    "text",
    ["nul\x00byte", "bad utf-8 \udc80 byte", "emoji \U0001f600", "line\u2028sep", "<b>&amp;</b>"],
    ids=["nul", "surrogate", "emoji", "line-separator", "markup"],
)
async def test_any_text_in_outputs_round_trips(store: TraceStore, text: str) -> None:
    events: list[StoredEvent] = [
        ev.RunStarted(run_id="r1", seq=0, ts=1.0, workflow="wf", inputs={"q": text}),
        ev.StepSucceeded(run_id="r1", seq=1, ts=2.0, step_id="s", attempt=1,
                         output={"o": [text], "k": {"x": text}}, raw=text),
        ev.StepFailed(run_id="r1", seq=2, ts=3.0, step_id="t", attempt=1, error=text,
                      error_type="ToolError"),
    ]  # fmt: skip
    await store.append(events)
    assert [e.model_dump() for e in await store.events("r1")] == [e.model_dump() for e in events]


async def test_text_that_utf8_cannot_hold_is_stored_with_replacement_characters(
    store: TraceStore,
) -> None:
    # A lone surrogate (text read with surrogateescape) where a SQL store keeps it in a
    # column (a step id, a run's error), or in a dict key, used to fail the append with
    # a UnicodeEncodeError; every backend now stores the batch with U+FFFD in its place.
    bad, stored = "x\udc80y", "x\ufffdy"
    events: list[StoredEvent] = [
        ev.RunStarted(run_id="r1", seq=0, ts=1.0, workflow="wf", inputs={}),
        ev.StepSucceeded(run_id="r1", seq=1, ts=2.0, step_id="s", attempt=1,
                         output={bad: 1}),
        ev.StepFailed(run_id="r1", seq=2, ts=3.0, step_id=f"t{bad}", attempt=1, error="e",
                      error_type="ToolError"),
        ev.RunFinished(run_id="r1", seq=3, ts=4.0, status="failed", error=bad),
    ]  # fmt: skip
    for event in events:
        await store.append([event])
    back = await store.events("r1")
    assert [e.seq for e in back] == [0, 1, 2, 3]
    run = await store.read_run("r1")
    assert run.step("s").output == {stored: 1}
    assert run.step(f"t{stored}").status == "failed"
    assert run.error == stored
    [info] = await store.list_runs()
    assert (info.status, info.n_steps, info.error) == ("failed", 2, stored)


async def test_list_runs_filters_and_pages(store: TraceStore, make_run: Any) -> None:
    plan = [
        ("a", "alpha", "succeeded", None),
        ("b", "alpha", "failed", None),
        ("c", "beta", "succeeded", None),
        ("d", "alpha", None, None),
        ("e", "beta", "cancelled", "c"),  # a sub-workflow's run: a step of c started it
        ("f", "alpha", "succeeded", "c"),  # a fork of c: no step started it
        ("g", "beta", "succeeded", None),
    ]
    for i, (run_id, workflow, status, parent) in enumerate(plan):
        await store.append(make_run(run_id, workflow=workflow, status=status,
                                    started=1000.0 + i, parent_run_id=parent,
                                    parent_attempt=1 if run_id == "e" else None))

    async def ids(flt: RunFilter | None = None, **page: int) -> list[str]:
        return [r.id for r in await store.list_runs(flt, **page)]

    assert await ids() == ["g", "f", "e", "d", "c", "b", "a"]
    assert await ids(limit=3) == ["g", "f", "e"]
    assert await ids(limit=3, offset=3) == ["d", "c", "b"]
    assert await ids(limit=3, offset=6) == ["a"]
    assert await ids(offset=7) == []
    assert await ids(RunFilter(status="succeeded")) == ["g", "f", "c", "a"]
    assert await ids(RunFilter(workflow="alpha")) == ["f", "d", "b", "a"]
    assert await ids(RunFilter(status="succeeded", workflow="alpha"), limit=1, offset=1) == ["a"]
    assert await ids(RunFilter(parent_run_id="c")) == ["f", "e"]
    assert await ids(RunFilter(top_level=True)) == ["g", "f", "d", "c", "b", "a"]
    assert await ids(RunFilter(finished=False)) == ["d"]
    assert await ids(RunFilter(finished=True, workflow="beta")) == ["g", "e", "c"]
    assert await ids(RunFilter(started_before=1002.0)) == ["b", "a"]
    assert await ids(RunFilter(started_after=1005.0)) == ["g", "f"]


async def test_same_start_time_orders_by_id(store: TraceStore, make_linear_run: Any) -> None:
    for run_id in ("x", "z", "y"):
        await store.append(make_linear_run(run_id, 3, started=5.0))
    assert [r.id for r in await store.list_runs()] == ["z", "y", "x"]


async def test_export_import_round_trip(store: TraceStore, make_run: Any, as_json: Dump) -> None:
    events = make_run("r1", unknown_kind=True)
    await store.append(events)
    listed = await store.list_runs()
    doc = json.loads(json.dumps(await store.export_run("r1")))

    assert doc["format"] == "ponder.trace" and doc["version"] == 1
    assert doc["run"]["id"] == "r1" and len(doc["events"]) == len(events)

    assert await store.delete_runs(["r1"]) == 1
    assert await store.import_run(doc) == "r1"
    assert as_json(await store.events("r1")) == as_json(events)
    assert await store.list_runs() == listed

    elsewhere = MemoryStore()
    await elsewhere.import_run(doc)
    assert as_json(await elsewhere.events("r1")) == as_json(events)
    assert await elsewhere.list_runs() == listed


def _corrupt_docs(doc: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(name, document, expected message fragment)."""

    def changed(**kw: Any) -> dict[str, Any]:
        return {**doc, **kw}

    events = doc["events"]
    no_step_id = [dict(e) for e in events]
    del no_step_id[5]["step_id"]
    other_run = [dict(e) for e in events]
    other_run[3]["run_id"] = "zzz"
    dup_seq = [dict(e) for e in events]
    dup_seq[4]["seq"] = 3
    bad_status = [dict(e) for e in events]
    bad_status[-1]["status"] = "exploded"
    huge_seq = [dict(e) for e in events]
    huge_seq[-1]["seq"] = 2**70
    long_kind = [dict(e) for e in events]
    long_kind[3]["kind"] = "k" * 65
    no_start = [dict(e) for e in events if e["kind"] != "run_started"]
    empty_id = [{**e, "run_id": ""} for e in events]
    return [
        ("not an object", [1, 2], "expected a JSON object"),
        ("wrong format", changed(format="other"), "format"),
        ("newer version", changed(version=99), "newer"),
        ("no events", changed(events=[]), "non-empty"),
        ("missing field", changed(events=no_step_id), "events[5]"),
        ("mixed runs", changed(events=other_run), "events[3].run_id"),
        ("duplicate seq", changed(events=dup_seq), "appears twice"),
        ("bad status", changed(events=bad_status), "status"),
        ("run id mismatch", changed(run={"id": "other"}), "run.id"),
        ("event not object", changed(events=[*events[:-1], "x"]), "events[11]: Input"),
        ("seq out of range", changed(events=huge_seq), "events[11].seq: must be at most"),
        ("kind too long", changed(events=long_kind), "events[3].kind: at most 64"),
        ("no run_started", changed(events=no_start, run={"id": "new"}), "no run_started"),
        ("empty run id", changed(events=empty_id, run={"id": ""}), "events[0].run_id: must not"),
    ]


async def test_corrupt_import_is_refused_and_changes_nothing(
    store: TraceStore, make_run: Any, as_json: Dump
) -> None:
    await store.append(make_run("keep"))
    source = MemoryStore()
    await source.append(make_run("new", started=5000.0))
    doc = await source.export_run("new")
    before_runs, before_events = await store.list_runs(), as_json(await store.events("keep"))

    for name, corrupt, fragment in _corrupt_docs(doc):
        with pytest.raises(InvalidTrace) as info:
            await store.import_run(corrupt)
        assert fragment in str(info.value), name
        assert await store.list_runs() == before_runs, name
        assert await store.events("new") == [], name
    assert as_json(await store.events("keep")) == before_events

    with pytest.raises(EventConflict):
        await store.import_run(await store.export_run("keep"))
    assert await store.list_runs() == before_runs


async def test_gc_deletes_old_finished_runs(store: TraceStore, make_run: Any) -> None:
    day = 86_400.0
    now = 100 * day
    ages = {"old1": 30, "old2": 10, "young": 2, "old-running": 20}
    for run_id, age in ages.items():
        status = None if run_id == "old-running" else "succeeded"
        await store.append(make_run(run_id, started=now - age * day, status=status))

    assert await store.delete_runs_older_than(timedelta(days=7), now=now) == 2
    assert {r.id for r in await store.list_runs()} == {"young", "old-running"}
    assert await store.events("old1") == []

    deleted = await store.delete_runs_older_than(
        timedelta(days=7), now=now, include_unfinished=True
    )
    assert deleted == 1
    assert [r.id for r in await store.list_runs()] == ["young"]
    assert await store.delete_runs(["ghost"]) == 0


async def test_concurrent_appends_lose_nothing(store: TraceStore, make_linear_run: Any) -> None:
    n_runs, n_events = 50, 20
    rng = random.Random(7)

    async def one_run(i: int) -> None:
        events = make_linear_run(f"run{i:02}", n_events, started=float(i))
        while events:
            size = rng.randint(1, 4)
            batch, events = events[:size], events[size:]
            await store.append(batch)

    async with anyio.create_task_group() as tg:
        for i in range(n_runs):
            tg.start_soon(one_run, i)

    runs = await store.list_runs(limit=1000)
    assert len(runs) == n_runs and {r.status for r in runs} == {"succeeded"}
    assert {r.n_steps for r in runs} == {n_events - 2}
    for i in range(n_runs):
        assert [e.seq for e in await store.events(f"run{i:02}")] == list(range(n_events))


async def test_store_hook_persists_each_batch(store: TraceStore, make_linear_run: Any) -> None:
    hook = StoreHook(store)
    events = make_linear_run("r1", 5)
    await hook([])
    await hook(events[:2])
    assert [e.seq for e in await store.events("r1")] == [0, 1]
    await hook(events[2:])
    assert [e.seq for e in await store.events("r1")] == [0, 1, 2, 3, 4]
    with pytest.raises(EventConflict):
        await hook(events[:1])


async def test_closed_store_refuses_work(store_url: str, make_linear_run: Any) -> None:
    store = await open_store(store_url)
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.append(make_linear_run("r1", 3))
    with pytest.raises(StoreError, match="closed"):
        await store.list_runs()
