"""Playback draws each frame from what changed since the last: the timeline's rows of a
position reached event by event are those of the same position reached at once, and the
graph and the timeline kept from frame to frame are those drawn anew, their unchanged
steps, edges and rows the elements they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import append_all, research_trace

pytestmark = pytest.mark.browser

JS = Path(__file__).parent / "js"


def _with_setup(check: str) -> str:
    """The check's function with ``loadRun`` of ``js/run_setup.js`` in its scope: the
    page's Content-Security-Policy lets it import only the viewer's own scripts."""
    setup = (JS / "run_setup.js").read_text()
    return f"(() => {{\n{setup}\nreturn (\n{check}\n);\n}})()"


DAG_CHECK = _with_setup((JS / "dag_check.js").read_text())
GANTT_CHECK = _with_setup((JS / "gantt_check.js").read_text())
_ROWS = "s => [...s.querySelectorAll('[data-row]')].map((g) => g.getAttribute('data-row'))"


def _at(page: Any, index: int) -> None:
    expect(page.locator("#replay-label")).to_contain_text(f"event {index + 1}/")


def test_the_timeline_stepped_through_equals_the_timeline_jumped_to(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, research_trace("stepped").events))
    page = web.new_page(height=1600)  # every row in view
    page.goto(f"{web.server.url}/runs/stepped")
    page.wait_for_selector("body[data-ready]")
    n = len(research_trace().events)
    page.locator("#scrubber").fill("0")
    _at(page, 0)
    stepped = []
    for i in range(1, n):  # forward one event at a time: the rows are added to
        page.keyboard.press("ArrowRight")
        _at(page, i)
        stepped.append(page.eval_on_selector("#gantt svg", _ROWS))
    for i in range(n - 1, 0, -1):  # backward jumps: each position folded again, whole
        page.locator("#scrubber").fill(str(i))
        _at(page, i)
        assert page.eval_on_selector("#gantt svg", _ROWS) == stepped[i - 1], i
    assert len(stepped[-1]) > 5 and len(stepped[0]) < len(stepped[-1])


def test_the_graph_kept_from_frame_to_frame_is_the_graph_drawn_anew(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, research_trace("kept-dag").events))
    page = web.new_page()
    page.goto(f"{web.server.url}/")
    out = page.evaluate(DAG_CHECK, "kept-dag")
    assert out["problems"] == []
    assert out["groups"] >= 1 and out["frames"] > 2 * out["events"]
    # most of a frame's steps and edges are those of the frame before
    assert out["reused"] > 3 * out["rebuilt"] > 0


def test_the_timeline_kept_from_frame_to_frame_is_the_timeline_drawn_anew(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, research_trace("kept-rows").events))
    page = web.new_page()
    page.goto(f"{web.server.url}/")
    out = page.evaluate(GANTT_CHECK, "kept-rows")
    assert out["problems"] == []
    assert out["frames"] > out["events"]
    # most of a frame's rows are those of the frame before
    assert out["reused"] > 2 * out["rebuilt"] > 0
