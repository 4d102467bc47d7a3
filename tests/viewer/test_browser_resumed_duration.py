"""A resumed run's duration on its page is the time its executions ran, as its
``run_finished`` counts it (``ponder show``'s), without the downtime between them. The
page counted from its first start: a run killed, resumed 15 s later and run for 30 s read
"44.6 s..." while it ran, then 30.0 s once finished; an interrupted run that had been
resumed counted the downtime for good."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import TraceBuilder, append_all, resumed_run

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start
from orchestrator.viewer._replay import ReplayFold

pytestmark = pytest.mark.browser

KILLED_TWICE_S = 1.0 + 0.5  # its two executions: 0 to 1.0, then 20.0 to 20.5


def _killed_twice(run_id: str) -> list[Any]:
    """A run whose process died at 1.0 s, resumed at 20.0 s by one that died at 20.5 s:
    interrupted (stored as running, its writer gone)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    writer = {"writer_host": host_name(), "writer_pid": proc.pid,
              "writer_start": process_start(proc.pid)}
    b = TraceBuilder(run_id, "killed")
    steps = [{"id": "a", "tool": "calc", "args": {"expression": "1"}},
             {"id": "b", "tool": "sleep", "args": {"seconds": 60}}]
    b.start(steps, **writer)
    b.run_step("a", "tool", 0.0, 0.1, output=1)
    b._add(ev.StepStarted, 1.0, step_id="b", step_kind="tool", attempt=1, input={})
    b.start(steps, at=20.0, resumed=True, **writer)
    b._add(ev.StepStarted, 20.5, step_id="b", step_kind="tool", attempt=2, input={})
    return b.events


def _seconds(text: str) -> float:
    """A duration as the page writes it ("700 ms", "1.50 s", "1.5 s...")."""
    m = re.fullmatch(r"([0-9.]+) (ms|s)\u2026?", text)
    assert m, text
    return float(m[1]) / (1000 if m[2] == "ms" else 1)


def test_the_server_s_keyframe_counts_each_execution_s_time() -> None:
    fold = ReplayFold()
    for e in _killed_twice("kf-killed"):
        fold.add(e)
    run = json.loads(fold.snapshot().to_json(fold))["run"]
    assert run["before"] == pytest.approx(1.0)
    assert run["execTs"] - run["startTs"] == pytest.approx(20.0)


def test_an_interrupted_run_resumed_before_counts_no_downtime(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, _killed_twice("killed-twice")))
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/killed-twice")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#run-status")).to_have_text("interrupted")
    duration = page.locator("#fact-duration")
    assert _seconds(duration.inner_text()) == pytest.approx(KILLED_TWICE_S)


def test_a_resumed_run_in_progress_counts_no_downtime(web: Browser) -> None:
    # cancelled at 0.5 s, resumed at 5.0 s, its last event at 5.2 s (now): 0.7 s and
    # counting
    t0 = time.time() - 5.2
    web.server.call(lambda: append_all(web.server.store, resumed_run("resumed-duration", t0)))
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/resumed-duration")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#live")).to_be_visible()
    duration = page.locator("#fact-duration")
    expect(duration).to_contain_text("\u2026")
    assert 0.7 <= _seconds(duration.inner_text()) < 3.0
