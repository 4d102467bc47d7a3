"""The SQLite store's writer thread: durability setting, cancellation, wake-ups, payloads."""

from __future__ import annotations

import gc
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from orchestrator.errors import ConfigError
from orchestrator.runtime import events as ev
from orchestrator.store import MemoryStore, SqlStore, StoredEvent, TraceStore, _runners
from orchestrator.store._sql import normalize_url

pytestmark = pytest.mark.anyio


def steps(run_id: str, first_seq: int, n: int) -> list[StoredEvent]:
    return [
        ev.StepSucceeded(run_id=run_id, seq=first_seq + i, ts=1.0 + i, step_id=f"s{i}",
                         attempt=1, output={"i": i})
        for i in range(n)
    ]  # fmt: skip


def runner_of(store: SqlStore) -> _runners.ThreadRunner:
    runner = store._thread_runner
    assert runner is not None
    return runner


async def pragma(store: SqlStore, name: str) -> Any:
    return await runner_of(store).write(lambda c: c.exec_driver_sql(f"PRAGMA {name}").scalar())


# -- durability ---------------------------------------------------------------------


async def test_synchronous_is_normal_by_default_and_full_on_request(tmp_path: Path) -> None:
    async with SqlStore(str(tmp_path / "a.db")) as store:
        assert await pragma(store, "synchronous") == 1  # NORMAL
        assert await pragma(store, "journal_mode") == "wal"
    async with SqlStore(f"sqlite:///{tmp_path / 'b.db'}?synchronous=full") as store:
        assert await pragma(store, "synchronous") == 2  # FULL
        await store.append(steps("r", 0, 2))
        assert [e.seq for e in await store.events("r")] == [0, 1]
        assert "synchronous=full" in store.url


def test_unknown_synchronous_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="synchronous=off is not supported"):
        SqlStore("sqlite:////tmp/x.db?synchronous=OFF")
    assert normalize_url("sqlite:////tmp/x.db?synchronous=FULL").query == {"synchronous": "FULL"}


_APPEND_FOREVER = """
import sys, anyio
from orchestrator.runtime import events as ev
from orchestrator.store import SqlStore

async def main():
    async with SqlStore(sys.argv[1]) as store:
        seq = 0
        while True:
            await store.append([
                ev.StepSucceeded(run_id="r", seq=seq + i, ts=1.0, step_id=f"s{seq}", attempt=1,
                                output=seq)
                for i in range(2)
            ])
            print(seq + 1, flush=True)  # the batch is committed: append has returned
            seq += 2

anyio.run(main)
"""


def test_a_returned_append_survives_the_process_being_killed(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _APPEND_FOREVER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        last = -1
        for line in child.stdout:
            last = int(line)
            if last >= 200:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert last >= 200

    async def stored() -> list[int]:
        async with SqlStore(str(path)) as store:
            return [e.seq for e in await store.events("r")]

    seqs = anyio.run(stored)
    assert seqs[: last + 1] == list(range(last + 1))
    assert len(seqs) % 2 == 0  # no half batch


# -- cancellation -------------------------------------------------------------------


async def test_cancelled_appends_leave_whole_batches_or_nothing(tmp_path: Path) -> None:
    async with SqlStore(str(tmp_path / "p.db")) as store:
        gate = threading.Event()
        blocked = anyio.Event()

        async def hold_the_writer() -> None:
            await runner_of(store).write(lambda conn: gate.wait(10))
            blocked.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold_the_writer)
            await anyio.sleep(0.05)  # the writer is now inside hold_the_writer's job
            async with anyio.create_task_group() as appenders:
                for i in range(20):
                    appenders.start_soon(store.append, steps(f"r{i}", 0, 3))
                await anyio.sleep(0.05)  # all queued behind the held job
                appenders.cancel_scope.cancel()
            gate.set()
        assert blocked.is_set()
        # Every cancelled batch was taken off the queue before it started.
        for i in range(20):
            assert await store.events(f"r{i}") == []
        # The writer goes on.
        await store.append(steps("after", 0, 2))
        assert len(await store.events("after")) == 2


async def test_a_started_write_finishes_before_its_cancellation_goes_on(tmp_path: Path) -> None:
    async with SqlStore(str(tmp_path / "p.db")) as store:
        started, gate = threading.Event(), threading.Event()
        order: list[str] = []

        def slow(conn: sa.Connection) -> None:
            started.set()
            gate.wait(10)
            conn.exec_driver_sql("CREATE TABLE marker (x INTEGER)")
            order.append("committed")

        async def write() -> None:
            try:
                await runner_of(store).write(slow)
            finally:
                order.append("caller unwound")

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.to_thread.run_sync(started.wait, 10)
            tg.cancel_scope.cancel()
            await anyio.sleep(0.05)
            assert order == []  # the caller still waits on its running transaction
            gate.set()
        assert order == ["committed", "caller unwound"]
        tables = await runner_of(store).write(
            lambda c: set(sa.inspect(c).get_table_names())
        )
        assert "marker" in tables


async def test_many_cancellations_never_split_a_batch(tmp_path: Path) -> None:
    async with SqlStore(str(tmp_path / "p.db")) as store:
        for round_ in range(10):
            async with anyio.create_task_group() as tg:
                for i in range(30):
                    tg.start_soon(store.append, steps(f"r{round_}-{i}", 0, 4))
                await anyio.sleep(0.001 * round_)
                tg.cancel_scope.cancel()
        stored = 0
        for round_ in range(10):
            for i in range(30):
                n = len(await store.events(f"r{round_}-{i}"))
                assert n in (0, 4)
                stored += n > 0
        assert stored > 0


# -- how the writer wakes its callers ---------------------------------------------------


async def test_appends_work_without_an_eventfd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> int:
        raise OSError("no eventfd here")

    monkeypatch.setattr(os, "eventfd", unavailable)
    async with SqlStore(str(tmp_path / "p.db")) as store:
        await store.append(steps("r", 0, 3))
        assert len(await store.events("r")) == 3
        assert runner_of(store)._no_waker


async def test_without_an_asyncio_loop_callers_wait_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What another event loop (trio) gets: the same queue, waited on in a worker thread.
    monkeypatch.setattr(_runners, "_asyncio_loop", lambda: None)
    async with SqlStore(str(tmp_path / "p.db")) as store:
        await store.append(steps("r", 0, 3))
        assert len(await store.events("r")) == 3
        gate = threading.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner_of(store).write, lambda conn: gate.wait(10))
            await anyio.sleep(0.05)
            async with anyio.create_task_group() as appenders:
                appenders.start_soon(store.append, steps("cancelled", 0, 2))
                await anyio.sleep(0.05)
                appenders.cancel_scope.cancel()
            gate.set()
        assert await store.events("cancelled") == []
        await store.append(steps("r", 3, 1))
        assert len(await store.events("r")) == 4



def test_eventfds_are_closed_with_the_store(tmp_path: Path) -> None:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("no /proc/self/fd")

    async def main(run_id: str) -> None:
        async with SqlStore(str(tmp_path / "p.db")) as store:
            await store.append(steps(run_id, 0, 1))

    anyio.run(main, "warm-up")  # imports, the default thread pool
    before = len(list(fds.iterdir()))
    for i in range(5):
        anyio.run(main, f"r{i}")
    assert len(list(fds.iterdir())) <= before


# -- payloads -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_odd_payloads_round_trip_as_in_memory(backend: str, tmp_path: Path) -> None:
    store: TraceStore = (
        MemoryStore() if backend == "memory" else SqlStore(str(tmp_path / "p.db"))
    )
    odd = ev.StepSucceeded(
        run_id="r", seq=0, ts=1.0, step_id="s", attempt=1, latency_s=math.nan,
        output={"bad utf-8": "x\udc80y", "nan": math.nan, "big": 2**70, "✓": "✓\x00"},
    )  # fmt: skip
    async with store:
        await store.append([odd])
        (back,) = await store.events("r")
    assert isinstance(back, ev.StepSucceeded)
    assert math.isnan(back.latency_s)
    assert back.output == {"bad utf-8": "x\udc80y", "nan": None, "big": 2**70, "✓": "✓\x00"}


def test_a_store_dropped_without_close_leaves_no_writer_thread(tmp_path: Path) -> None:
    def writers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("ponder-sqlite")]

    async def main() -> None:
        store = SqlStore(str(tmp_path / "p.db"))
        await store.open()
        await store.append(steps("r", 0, 1))
        assert writers()

    anyio.run(main)
    gc.collect()
    for _ in range(100):
        if not writers():
            break
        time.sleep(0.01)
    assert writers() == []
