"""The runs list forgets what it kept of a run deleted while it was running: a long-lived
``ponder view`` kept each such run's executions (and an interrupted one's last event)
for as long as it ran."""

from __future__ import annotations

from viewer_traces import CountingReader, append_all, run_sync, stopped_run

from orchestrator.runtime import events as ev
from orchestrator.store import MemoryStore, RunWriters
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
