"""A live run's duration on its page counts to now, as the runs list's does: it counted
to the run's last event, then on from when the page opened, so a run whose step had been
running for 90 s read "10.0 s..." on its page (and "1 m 40 s..." in the list) until its
next event came."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import TraceBuilder, append_all

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start

pytestmark = pytest.mark.browser


def _long_step(run_id: str, t0: float) -> list[Any]:
    """A run of this (live) process whose step started at 10 s and runs still."""
    pid = os.getpid()
    writer = {"writer_host": host_name(), "writer_pid": pid, "writer_start": process_start(pid)}
    b = TraceBuilder(run_id, "long-step", t0=t0)
    b.start([{"id": "slow", "tool": "sleep", "args": {"seconds": 600}}], **writer)
    b._add(ev.StepStarted, 10.0, step_id="slow", step_kind="tool", attempt=1, input={})
    return b.events


def _seconds(text: str) -> float:
    """A duration as the pages write it ("9.50 s...", "1 m 40 s...")."""
    m = re.fullmatch(r"(?:([0-9]+) m )?([0-9.]+) s\u2026", text)
    assert m, text
    return 60 * float(m[1] or 0) + float(m[2])


def test_a_live_run_s_duration_counts_to_now_on_its_page_and_in_the_list(web: Browser) -> None:
    t0 = time.time() - 100.0
    web.server.call(lambda: append_all(web.server.store, _long_step("long-step", t0)))
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/long-step")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#live")).to_be_visible()
    duration = page.locator("#fact-duration")
    expect(duration).to_contain_text("\u2026")
    assert _seconds(duration.inner_text()) == pytest.approx(time.time() - t0, abs=3.0)

    page.goto(f"{web.server.url}/?workflow=long-step")
    row = page.locator('tr[data-run-id="long-step"]')
    expect(row).to_contain_text("running")
    assert _seconds(row.locator("td").nth(4).inner_text()) == pytest.approx(
        time.time() - t0, abs=3.0)


def test_a_browser_whose_clock_is_off_counts_on_the_viewer_s(web: Browser) -> None:
    # a laptop an hour ahead of the machine that runs the viewer and the run
    t0 = time.time() - 100.0
    web.server.call(lambda: append_all(web.server.store, _long_step("skewed", t0)))
    page = web.new_page()
    page.clock.install(time=time.time() + 3600)
    page.goto(f"{web.server.url}/?workflow=long-step")
    row = page.locator('tr[data-run-id="skewed"]')
    expect(row).to_contain_text("running")
    assert _seconds(row.locator("td").nth(4).inner_text()) == pytest.approx(
        time.time() - t0, abs=3.0)
    page.goto(f"{web.server.url}/runs/skewed")
    page.wait_for_selector("body[data-ready]")
    assert _seconds(page.locator("#fact-duration").inner_text()) == pytest.approx(
        time.time() - t0, abs=3.0)
