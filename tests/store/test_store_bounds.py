"""Values beyond what a database counts (integers) or encodes (nesting): every backend
answers alike (no rows, a ValueError or a StoreError naming the value), never a driver's
overflow or a bare error of the encoder."""

from __future__ import annotations

import math
from typing import Any

import pytest

from orchestrator.store import RunFilter, StoreError, TraceStore

pytestmark = pytest.mark.anyio

HUGE = (2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**70, 10**400)


async def test_events_after_any_integer(store: TraceStore, make_linear_run: Any) -> None:
    # SQLite raised the driver's OverflowError from 2**63, PostgreSQL a StoreError
    # ('integer out of range', as if the store failed) from 2**31, on either side
    await store.append(make_linear_run("r1", 6))
    for after in HUGE:
        assert await store.events("r1", after_seq=after) == [], after
        assert await store.events("r1", after_seq=after, kinds=("run_started",)) == [], after
    for after in (-1, -(2**31), -(2**31) - 1, -(2**63), -(2**63) - 1, -(10**400)):
        assert [e.seq for e in await store.events("r1", after_seq=after)] == list(range(6))
        assert [e.seq for e in await store.events_page("r1", after_seq=after, limit=2)] == [0, 1]
    assert [e.seq for e in await store.events("r1", after_seq=3)] == [4, 5]


async def test_a_page_of_any_size(store: TraceStore, make_linear_run: Any) -> None:
    await store.append(make_linear_run("r1", 6))
    for limit in HUGE:
        assert [e.seq for e in await store.events_page("r1", limit=limit)] == list(range(6))
        assert [e.seq for e in await store.events_page("r1", after_seq=4, limit=limit)] == [5]


async def test_runs_at_any_offset_and_limit(store: TraceStore, make_linear_run: Any) -> None:
    # SQLite overflowed from 2**63, PostgreSQL failed with 'bigint out of range'
    await store.append(make_linear_run("r1", 3))
    await store.append(make_linear_run("r2", 3, started=2_000.0))
    for limit in HUGE:
        assert [r.id for r in await store.list_runs(limit=limit)] == ["r2", "r1"], limit
        assert [r.id for r in await store.list_runs(limit=limit, offset=1)] == ["r1"], limit
    for offset in HUGE:
        assert await store.list_runs(offset=offset) == [], offset
    assert await store.list_runs(limit=0) == []


async def test_a_negative_limit_or_offset_is_a_value_error(
    store: TraceStore, make_linear_run: Any
) -> None:
    # SQLite read -1 as no limit, memory as all runs but the last, PostgreSQL failed
    await store.append(make_linear_run("r1", 3))
    for name, value in (("limit", -1), ("offset", -1), ("limit", -(2**70))):
        with pytest.raises(ValueError, match=rf"{name} must be an integer from 0, got {value}"):
            await store.list_runs(**{name: value})


async def test_run_filters_at_any_time(store: TraceStore, make_linear_run: Any) -> None:
    # an integer time from 2**63 overflowed SQLite's driver and PostgreSQL's bigint
    await store.append(make_linear_run("r1", 3))
    for huge in (2**63, 2**70, 10**400, math.inf, 1e308):
        assert [r.id for r in await store.list_runs(RunFilter(started_before=huge))] == ["r1"]
        assert await store.list_runs(RunFilter(started_after=huge)) == []
        assert await store.list_runs(RunFilter(started_before=-huge)) == []
        assert [r.id for r in await store.list_runs(RunFilter(started_after=-huge))] == ["r1"]


async def test_a_nan_time_is_a_value_error(store: TraceStore, make_linear_run: Any) -> None:
    # PostgreSQL orders NaN above every number (all runs 'started before' it), SQLite
    # binds it as NULL (none), memory compares it false
    await store.append(make_linear_run("r1", 3))
    for flt in (RunFilter(started_before=math.nan), RunFilter(started_after=math.nan)):
        with pytest.raises(ValueError, match="must be a Unix time, got nan"):
            await store.list_runs(flt)


@pytest.mark.parametrize("seq", [-1, 2**31, 2**63, 2**70])
async def test_a_seq_no_store_holds_is_refused_alike(
    store: TraceStore, make_linear_run: Any, seq: int
) -> None:
    # memory stored any seq, SQLite up to 2**63 - 1 (then its driver overflowed),
    # PostgreSQL none above 2**31 - 1 ('integer out of range'); all kept a negative one
    events = make_linear_run("r1", 3)
    bad = events[1].model_copy(update={"seq": seq})
    with pytest.raises(ValueError, match=rf"run 'r1' has seq {seq}: a seq is from 0 to "
                                         rf"{2**31 - 1} \(the batch was not written\)"):
        await store.append([events[0], bad])
    assert await store.events("r1") == []
    await store.append(events)
    assert [e.seq for e in await store.events("r1")] == [0, 1, 2]


async def test_an_output_nested_too_deeply_is_a_store_error(
    store: TraceStore, make_linear_run: Any
) -> None:
    # pydantic refuses a value nested deeper than about 255 levels with a bare ValueError
    # ('Circular reference detected (depth exceeded)'), which append let through
    deep: Any = "leaf"
    for _ in range(1000):
        deep = [deep]
    events = make_linear_run("r1", 3)
    bad = events[1].model_copy(update={"output": deep})
    with pytest.raises(StoreError, match=r"event 1 \(step_succeeded\) of run 'r1' cannot be "
                                         r"stored as JSON: a value in it is nested too deeply"):
        await store.append([events[0], bad])
    assert await store.events("r1") == []
