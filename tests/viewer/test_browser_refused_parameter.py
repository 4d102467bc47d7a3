"""A parameter the API refuses (a runs page address edited by hand) is said in words on
the page, naming it and the value given; the page showed FastAPI's JSON list as it is
(cannot list runs: [{"type":"less_than_equal","loc":["query","offset"],...}])."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from viewer_server import Browser

pytestmark = pytest.mark.browser


def test_an_offset_out_of_range_is_named_with_its_value(web: Browser) -> None:
    page = web.new_page()
    page.goto(f"{web.server.url}/?offset=3000000000")
    expect(page.locator("#runs-status")).to_have_text(
        'cannot list runs: offset: Input should be less than or equal to 2147483647 '
        '(got "3000000000")')
    web.page_errors.clear()  # the browser logs the 422 it was answered
