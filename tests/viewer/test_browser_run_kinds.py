"""The run page on runs of particular shapes: a resumed run, step ids the page has to
cut, steps that are not steps of the graph."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import append_all, resumed_run

pytestmark = pytest.mark.browser


def _open_run(web: Browser, run_id: str) -> Any:
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready]")
    return page


def test_a_resumed_run_in_progress_is_not_shown_as_finished(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, resumed_run("resumed-live")))
    page = _open_run(web, "resumed-live")
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#live")).to_be_visible()
    # its duration grows (the one of its first execution was kept, without the ellipsis)
    expect(page.locator("#fact-duration")).to_contain_text("\u2026")
    first = page.locator("#fact-duration").inner_text()
    expect(page.locator("#fact-duration")).not_to_have_text(first, timeout=4000)
    # the tokens are its steps' (the first execution's total was kept)
    expect(page.locator("#fact-tokens")).to_contain_text("(5 + 3)")
