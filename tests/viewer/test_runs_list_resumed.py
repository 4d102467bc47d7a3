"""The runs list counts a resumed run's running time as its page does: its earlier
executions' time and its latest's, without the downtime between them. The list counted
from its first start: a run cancelled after 0.5 s and resumed 95 s later read "1 m 40 s..."
there while its page read "5.5 s..."."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Api, Browser
from viewer_traces import TraceBuilder, append_all

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start

API = "/api/v1"
DOWN_S = 94.5  # between its first execution's last event and its resume


def _resumed_live(run_id: str, t0: float) -> list[Any]:
    """A run cancelled at 0.5 s, resumed at 95.0 s by this (live) process, running since."""
    pid = os.getpid()
    writer = {"writer_host": host_name(), "writer_pid": pid, "writer_start": process_start(pid)}
    b = TraceBuilder(run_id, "resumed-list", t0=t0)
    steps = [{"id": "b", "tool": "sleep", "args": {"seconds": 600}}]
    b.start(steps, **writer)
    b._add(ev.StepStarted, 0.2, step_id="b", step_kind="tool", attempt=1, input={})
    b._add(ev.StepCancelled, 0.5, step_id="b", reason="run cancelled")
    b.finish(0.5, status="cancelled")
    b.start(steps, at=95.0, resumed=True, **writer)
    b._add(ev.StepStarted, 95.1, step_id="b", step_kind="tool", attempt=2, input={})
    return b.events


def test_the_runs_list_gives_a_running_run_s_executions(api: Api) -> None:
    t0 = time.time() - 100.0
    api.call(lambda: append_all(api.store, _resumed_live("resumed-live", t0)))
    page = api.client.get(f"{API}/runs").json()
    [run] = page["runs"]
    assert run["status"] == "running" and run["started_at"] == pytest.approx(t0)
    assert page["executions"]["resumed-live"] == {
        "started_at": pytest.approx(t0 + 95.0), "before_s": pytest.approx(0.5),
        "ended_at": None}
    # read again (from what the viewer kept): the same
    assert api.client.get(f"{API}/runs").json()["executions"] == page["executions"]


def test_a_run_never_resumed_ran_from_its_start(api: Api) -> None:
    t0 = time.time() - 10.0
    events = _resumed_live("once", t0)[:2]  # started, its step started
    api.call(lambda: append_all(api.store, events))
    page = api.client.get(f"{API}/runs").json()
    assert page["executions"] == {
        "once": {"started_at": pytest.approx(t0), "before_s": 0.0, "ended_at": None}}


def test_a_resume_after_a_gap_in_seqs_counts_the_execution_before_it(api: Api) -> None:
    t0 = time.time() - 100.0
    events = _resumed_live("gap", t0)
    resumed = next(i for i, e in enumerate(events) if i and e.kind == "run_started")
    events = events[:resumed] + [e.model_copy(update={"seq": e.seq + 10})
                                 for e in events[resumed:]]
    api.call(lambda: append_all(api.store, events))
    assert api.client.get(f"{API}/runs").json()["executions"]["gap"]["before_s"] == (
        pytest.approx(0.5))


def _seconds(text: str) -> float:
    """A duration as the runs page writes it ("5.50 s...", "1 m 40 s...")."""
    m = re.fullmatch(r"(?:([0-9]+) m )?([0-9.]+) s\u2026", text)
    assert m, text
    return 60 * float(m[1] or 0) + float(m[2])


@pytest.mark.browser
def test_the_runs_page_leaves_out_a_resumed_run_s_downtime(web: Browser) -> None:
    t0 = time.time() - 100.0
    web.server.call(lambda: append_all(web.server.store, _resumed_live("listed-resumed", t0)))
    page = web.new_page()
    page.goto(f"{web.server.url}/?workflow=resumed-list")
    row = page.locator('tr[data-run-id="listed-resumed"]')
    expect(row).to_contain_text("running")
    ran = time.time() - t0 - DOWN_S
    assert _seconds(row.locator("td").nth(4).inner_text()) == pytest.approx(ran, abs=3.0)
