"""A run deleted while its page's live stream was down is said to be deleted, and the
page stops asking for it. EventSource does not report the 404 its reconnect got: the page
said "disconnected · retrying" and asked again every 3 s for as long as it stayed open."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import append_all, stopped_run

pytestmark = pytest.mark.browser

RECONNECT_MS = 3000  # run.js's
_REFUSED = "Failed to load resource: the server responded with a status of 503 (Service Unavailable)"


def _refuse(route: Any) -> None:
    route.fulfill(status=503, content_type="application/json",
                  body='{"detail": "the trace store cannot be read"}')


def test_a_run_deleted_while_its_stream_was_down_is_said_deleted(web: Browser) -> None:
    store = web.server.store
    web.server.call(lambda: append_all(store, stopped_run("gone-live", writer_alive=True)))
    page = web.new_page()
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/stream" in r.url else None)
    page.route("**/gone-live/stream*", _refuse)  # the stream down
    page.goto(f"{web.server.url}/runs/gone-live")
    live = page.locator("#live")
    expect(live).to_have_text("disconnected \u00b7 retrying")

    web.server.call(lambda: store.delete_runs(["gone-live"]))
    page.unroute("**/gone-live/stream*")  # up again: the stream answers 404 now
    expect(live).to_have_text("deleted from the trace store", timeout=3 * RECONNECT_MS)
    assert "gone-live" in (live.get_attribute("title") or "")
    asked = len(streams)
    page.wait_for_timeout(RECONNECT_MS + 1000)
    assert len(streams) == asked, streams
    expect(live).to_have_text("deleted from the trace store")
    web.page_errors.remove(_REFUSED)  # the browser logs the 503 it was given


def test_a_stream_refused_while_the_run_is_stored_is_asked_again(web: Browser) -> None:
    store = web.server.store
    web.server.call(lambda: append_all(store, stopped_run("back-live", writer_alive=True)))
    page = web.new_page()
    page.route("**/back-live/stream*", _refuse)
    page.goto(f"{web.server.url}/runs/back-live")
    live = page.locator("#live")
    expect(live).to_have_text("disconnected \u00b7 retrying")
    page.unroute("**/back-live/stream*")
    expect(live).to_have_text("live", timeout=3 * RECONNECT_MS)
    web.page_errors.remove(_REFUSED)
