"""The runs list forgets what it kept of a run deleted while it was running: a long-lived
``ponder view`` kept each such run's executions (and an interrupted one's last event)
for as long as it ran."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from viewer_traces import T0, CountingReader, append_all, run_sync, stopped_run

from orchestrator.runtime import events as ev
from orchestrator.store import MemoryStore, RunWriters, SqlStore, TraceStore
from orchestrator.viewer._executions import Executions


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_run_gone_from_the_store_or_over_is_forgotten_one_still_running_is_kept() -> None:
    async def main() -> None:
        store = MemoryStore()
        await store.open()
        for run_id in ("deleted", "finished", "elsewhere"):  # running, their process alive
            await append_all(store, stopped_run(run_id, writer_alive=True))
        await append_all(store, stopped_run("cut", writer_alive=False))
        reader, clock = CountingReader(store), _Clock()
        executions = Executions(reader, clock=clock)
        await executions.of(await store.list_runs(), interrupted={"cut"})
        assert set(executions._known) == {"deleted", "finished", "elsewhere", "cut"}
        assert set(executions._last) == {"cut"}

        await store.delete_runs(["deleted", "cut"])  # deleted while they ran
        last = (await store.events("finished"))[-1]
        await store.append([ev.RunFinished(run_id="finished", seq=last.seq + 1,
                                           ts=last.ts + 1, status="succeeded")])
        # a page of the running runs only, without the one shown on another page
        running = [r for r in await store.list_runs() if r.status == "running"]
        assert [r.id for r in running] == ["elsewhere"]
        shown: list[str] = []
        await executions.of(shown)
        assert len(executions._known) == 4  # not checked yet: at most once a minute

        clock.now += 61
        await executions.of(shown)
        assert set(executions._known) == {"elsewhere"}
        assert executions._last == {}

        # the one kept is not read again from its start when it is listed again
        known = executions._known["elsewhere"].seq
        reader.calls.clear()
        out = await executions.of(running)
        assert reader.calls == [("elsewhere", known)]
        assert out["elsewhere"].started_at == (await store.events("elsewhere"))[0].ts

    run_sync(main)


def test_the_writers_kept_of_a_run_deleted_go_with_it() -> None:
    # the viewer's RunWriters (which runs are interrupted) kept each one too
    async def main() -> None:
        store = MemoryStore()
        await store.open()
        for run_id in ("deleted", "kept"):
            await append_all(store, stopped_run(run_id, writer_alive=True))
        clock, writers = _Clock(), RunWriters(store)
        executions = Executions(store, clock=clock, forget=writers.forget)
        runs = await store.list_runs()
        assert await writers.interrupted(runs) == set()
        await executions.of(runs)
        assert set(writers._known) == {"deleted", "kept"}

        await store.delete_runs(["deleted"])
        clock.now += 61
        runs = await store.list_runs()
        await writers.interrupted(runs)
        await executions.of(runs)
        assert set(writers._known) == set(executions._known) == {"kept"}

    run_sync(main)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        yield SqlStore(str(tmp_path / "trace.db"))
    else:
        yield SqlStore(request.getfixturevalue("pg_url"))


def test_the_runs_kept_are_checked_in_one_read_however_many(store: TraceStore) -> None:
    # the check read each kept run's row on its own, once a minute: a viewer that had
    # shown many running runs asked the store as many times
    async def main() -> None:
        async with store:
            kept = [f"run-{i}" for i in range(6)]
            for i, run_id in enumerate(kept):
                await append_all(store, stopped_run(run_id, writer_alive=True, t0=T0 + i))
            for run_id, t0 in (("before", T0 - 5), ("after", T0 + 10)):  # never shown
                await append_all(store, stopped_run(run_id, writer_alive=True, t0=t0))
            reader, clock = CountingReader(store), _Clock()
            executions = Executions(reader, clock=clock)
            await executions.of([r for r in await store.list_runs() if r.id in kept])
            assert set(executions._known) == set(kept)

            await store.delete_runs(["run-1", "run-4"])
            last = (await store.events("run-2"))[-1]
            await store.append([ev.RunFinished(run_id="run-2", seq=last.seq + 1,
                                               ts=last.ts + 1, status="succeeded")])
            reader.calls.clear()
            reader.listings.clear()
            clock.now += 61
            await executions.of([])
            assert len(reader.listings) == 1
            assert reader.infos == [] and reader.calls == [] and reader.lasts == []
            assert set(executions._known) == {"run-0", "run-3", "run-5"}

            reader.listings.clear()
            clock.now += 61
            await executions.of([r for r in await store.list_runs() if r.id in kept])
            assert reader.listings == []  # each kept run listed: nothing to check

    run_sync(main)
