"""A read the run page makes for what it draws, refused by the viewer (the run deleted
from the trace store while its page is open, the store down), is not asked again at
once: the failed read redrew the page, whose redraw asked for it again, about twenty
times a second for as long as the page stayed open. It is asked again when the user
acts after a few seconds."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import append_all, big_trace

pytestmark = pytest.mark.browser

RETRY_MS = 5000  # run.js's


def _click_step(page: Any, step_id: str) -> None:
    page.evaluate("""(id) => [...document.querySelectorAll('#dag g.step')]
        .find((g) => g.getAttribute('data-step-id') === id)
        .dispatchEvent(new MouseEvent('click', {bubbles: true}))""", step_id)


def test_reads_of_a_run_deleted_while_its_page_is_open_are_not_repeated(web: Browser) -> None:
    # more events than the page keeps: it draws them from the server's keyframes, and
    # reads a step's input and output, or a position scrubbed to, when it needs them
    events = big_trace("deleted-long", 7000).events
    store = web.server.store
    web.server.call(lambda: append_all(store, events), timeout=120)
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/deleted-long")
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/api/" in r.url else None)
    web.server.call(lambda: store.delete_runs(["deleted-long"]))

    _click_step(page, "s0")
    note = page.locator("#loading")
    expect(note).to_have_text("the step's details could not be loaded \u00b7 reload")
    page.locator("#scrubber").fill(str(len(events) // 3))
    expect(note).to_have_text("events could not be loaded \u00b7 move again or reload")
    page.wait_for_timeout(2000)
    # once each (again only if this took the page past RETRY_MS, on a loaded machine)
    assert sum("step_id=s0" in u for u in reads) <= 2, reads
    assert sum("/keyframe" in u for u in reads) <= 2, reads

    # stored again: the next move after a while reads it
    web.server.call(lambda: append_all(store, events), timeout=120)
    page.wait_for_timeout(RETRY_MS - 2000)
    page.locator("#scrubber").fill(str(len(events) // 3 + 1))
    page.locator("#scrubber").fill(str(len(events) // 3))
    output = next(e.output for e in events if e.kind == "step_succeeded" and e.step_id == "s0")
    expect(page.locator('#detail [data-field="output"]')).to_have_text(str(output))
