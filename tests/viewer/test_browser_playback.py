"""Playback draws each frame from what changed since the last: the timeline's rows of a
position reached event by event are those of the same position reached at once."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import append_all, research_trace

pytestmark = pytest.mark.browser

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
