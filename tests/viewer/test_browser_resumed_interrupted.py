"""A run page showing an interrupted run follows it again once it is resumed
(``ponder resume``): it kept saying "interrupted", with the run's events as they were
when its process died, until the user reloaded it."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import TraceBuilder, append_all, stopped_run

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start

pytestmark = pytest.mark.browser

WATCH_MS = 5000  # run.js's


def test_an_interrupted_run_s_page_follows_it_once_resumed(web: Browser) -> None:
    store = web.server.store
    events = stopped_run("cut-then-resumed", writer_alive=False)
    web.server.call(lambda: append_all(store, events))
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/cut-then-resumed")
    expect(page.locator("#run-status")).to_have_text("interrupted")

    pid = os.getpid()  # resumed by a process that runs
    b = TraceBuilder("cut-then-resumed", "stopped")
    b.start([{"id": "b", "tool": "sleep", "args": {"seconds": 60}}], at=5.0, resumed=True,
            writer_host=host_name(), writer_pid=pid, writer_start=process_start(pid))
    b._add(ev.StepStarted, 5.1, step_id="b", step_kind="tool", attempt=1, input={})
    n = len(events)
    resumed = [e.model_copy(update={"seq": e.seq + n}) for e in b.events]
    web.server.call(lambda: append_all(store, resumed))
    expect(page.locator("#run-status")).to_have_text("running", timeout=3 * WATCH_MS)
    expect(page.locator("#run-interrupted")).to_be_hidden()
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#fact-events")).to_contain_text(str(n + len(resumed)))
