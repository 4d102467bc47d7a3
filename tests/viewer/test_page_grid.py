"""The graph's spatial index (static/js/grid.js), run as an ES module in Chromium: a
frame draws what it finds, so it must find exactly what testing each box would."""

from __future__ import annotations

from pathlib import Path

import pytest
from viewer_server import Browser

pytestmark = pytest.mark.browser

GRID_CHECK = (Path(__file__).parent / "js" / "grid_check.js").read_text()


def test_the_grid_finds_what_meets_a_view_in_order(web: Browser) -> None:
    page = web.new_page()
    page.goto(f"{web.server.url}/")
    out = page.evaluate(GRID_CHECK)
    assert out["problems"] == []
    assert out["queries"] == 403 and out["found"] > 1000
