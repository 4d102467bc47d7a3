"""The runs list gives an interrupted run's duration, as its page does: the time it ran
to its last event. The list showed "—" (its row, stored as running, has no duration)
while its page showed the time it ran."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Api, Browser
from viewer_traces import T0, CountingReader, TraceBuilder, append_all, run_sync

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start
from orchestrator.store import MemoryStore
from orchestrator.viewer._executions import Executions

API = "/api/v1"


def _dead_writer() -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {"writer_host": host_name(), "writer_pid": proc.pid,
            "writer_start": process_start(proc.pid)}


def _interrupted(run_id: str, n_steps: int = 3, *, resumed: bool = False) -> list[Any]:
    """A run whose process died at 2.0 + n_steps s (its last event), never finished;
    ``resumed``: cancelled at 0.5 s and resumed at 2.0 s (its downtime 1.5 s)."""
    writer = _dead_writer()
    b = TraceBuilder(run_id, "cut")
    steps = [{"id": f"s{i}", "tool": "calc", "args": {"expression": "1"}}
             for i in range(n_steps)]
    b.start(steps, **writer)
    if resumed:
        b._add(ev.StepStarted, 0.2, step_id="s0", step_kind="tool", attempt=1, input={})
        b._add(ev.StepCancelled, 0.5, step_id="s0", reason="run cancelled")
        b.finish(0.5, status="cancelled")
        b.start(steps, at=2.0, resumed=True, **writer)
    for i in range(n_steps):
        b.run_step(f"s{i}", "tool", 2.0 + i, 3.0 + i, output=i)
    return b.events


def test_the_runs_list_gives_an_interrupted_run_s_last_event_time(api: Api) -> None:
    events = _interrupted("cut-1")
    api.call(lambda: append_all(api.store, events))
    page = api.client.get(f"{API}/runs").json()
    assert page["interrupted"] == ["cut-1"]
    execution = page["executions"]["cut-1"]
    assert execution["ended_at"] == pytest.approx(events[-1].ts)
    assert execution["before_s"] == 0.0
    assert execution["ended_at"] - execution["started_at"] == pytest.approx(5.0)
    # asked again, from what the viewer kept: the same
    assert api.client.get(f"{API}/runs").json()["executions"] == page["executions"]


def test_a_resumed_interrupted_run_leaves_out_its_downtime(api: Api) -> None:
    api.call(lambda: append_all(api.store, _interrupted("cut-2", resumed=True)))
    execution = api.client.get(f"{API}/runs").json()["executions"]["cut-2"]
    ran = execution["before_s"] + execution["ended_at"] - execution["started_at"]
    assert ran == pytest.approx(0.5 + 3.0)


def test_a_live_run_has_no_end() -> None:
    from viewer_traces import stopped_run

    async def main() -> dict[str, Any]:
        store = MemoryStore()
        await store.open()
        await append_all(store, stopped_run("live", writer_alive=True))
        runs = await store.list_runs()
        return {k: v.model_dump() for k, v in (await Executions(store).of(runs)).items()}

    assert run_sync(main)["live"]["ended_at"] is None


@pytest.mark.parametrize("n_steps", [1, 7, 300])
def test_the_last_event_is_found_in_one_read(n_steps: int) -> None:
    events = _interrupted("long", n_steps)
    # a gap in the seqs (an imported trace) does not hide the events after it
    events = events[:5] + [e.model_copy(update={"seq": e.seq + 50}) for e in events[5:]]

    async def main() -> tuple[float | None, CountingReader, float | None]:
        store = MemoryStore()
        await store.open()
        await append_all(store, events)
        reader = CountingReader(store)
        executions = Executions(reader)
        runs = await store.list_runs()
        first = (await executions.of(runs, interrupted={"long"}))["long"].ended_at
        assert reader.lasts == [("long", -1)]  # from its run_started on
        again = (await executions.of(runs, interrupted={"long"}))["long"].ended_at
        # one read, of nothing: no event after the last one known
        assert reader.lasts[1:] == [("long", events[-1].seq)]
        return first, reader, again

    first, reader, again = run_sync(main)
    assert first == again == pytest.approx(events[-1].ts)
    assert reader.pages == []
    assert reader.whole == ["long", "long"]  # its run_started events


def test_a_run_resumed_and_interrupted_again_ends_at_its_new_last_event() -> None:
    events = _interrupted("again")

    async def main() -> list[float | None]:
        store = MemoryStore()
        await store.open()
        await append_all(store, events)
        executions = Executions(store)
        ended = [(await executions.of(await store.list_runs(), interrupted={"again"})
                  )["again"].ended_at]
        b = TraceBuilder("again", "cut", t0=events[0].ts)
        b.start([{"id": "s9", "tool": "calc", "args": {"expression": "1"}}], at=30.0,
                resumed=True, **_dead_writer())
        b.run_step("s9", "tool", 30.0, 31.5, output=9)
        await append_all(store, [e.model_copy(update={"seq": e.seq + len(events)})
                                 for e in b.events])
        ended.append((await executions.of(await store.list_runs(), interrupted={"again"})
                      )["again"].ended_at)
        return ended

    before, after = run_sync(main)
    assert before == pytest.approx(events[-1].ts)
    assert after == pytest.approx(events[0].ts + 31.5)


@pytest.mark.browser
def test_the_runs_page_shows_an_interrupted_run_s_duration(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, _interrupted("listed-cut")))
    page = web.new_page()
    page.goto(f"{web.server.url}/?workflow=cut")
    row = page.locator('tr[data-run-id="listed-cut"]')
    expect(row).to_contain_text("interrupted")
    expect(row.locator("td").nth(4)).to_have_text("5.00 s")


@pytest.mark.browser
def test_a_page_past_the_first_of_interrupted_runs_follows_their_resume(web: Browser) -> None:
    # The page stopped asking again past its first page unless a run on it ticked: an
    # interrupted run resumed meanwhile stayed "interrupted" there until a reload.
    dead = _dead_writer()
    step = [{"id": "s0", "tool": "calc", "args": {"expression": "1"}}]
    events: list[Any] = []
    for i in range(51):
        b = TraceBuilder(f"cutp-{i:02d}", "cut-paged", t0=T0 + i)
        b.start(step, **dead)
        b.run_step("s0", "tool", 0.1, 0.2, output=i)
        events += b.events
    web.server.call(lambda: append_all(web.server.store, events))
    page = web.new_page()
    page.clock.install()
    page.goto(f"{web.server.url}/?workflow=cut-paged&offset=50")
    row = page.locator('tr[data-run-id="cutp-00"]')
    expect(row).to_have_class("is-interrupted")
    expect(page.locator("#runs tbody tr")).to_have_count(1)

    pid = os.getpid()
    resumed = TraceBuilder("cutp-00", "cut-paged", t0=T0)
    resumed.start(step, at=10.0, resumed=True, writer_host=host_name(), writer_pid=pid,
                  writer_start=process_start(pid))
    n = sum(e.run_id == "cutp-00" for e in events)
    web.server.call(lambda: append_all(web.server.store, [
        e.model_copy(update={"seq": e.seq + n}) for e in resumed.events]))
    page.clock.run_for(4_500)  # the page's next refresh
    expect(row).to_have_class("is-running")
    expect(row).to_contain_text("running")
