"""A playback frame's status counts and critical path, kept from frame to frame by the
page's FrameIndex (static/js/frames.js), equal those computed from scratch."""

from __future__ import annotations

from pathlib import Path

import pytest
from viewer_server import Browser

pytestmark = pytest.mark.browser

FRAMES_CHECK = (Path(__file__).parent / "js" / "frames_check.js").read_text()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_frames_kept_incrementally_equal_frames_computed_from_scratch(
    web: Browser, seed: int
) -> None:
    page = web.new_page()
    page.goto(f"{web.server.url}/")
    out = page.evaluate(FRAMES_CHECK, [seed, 120, 600])
    assert out["problems"] == []
    assert out["steps"] >= 120
    # most frames were followed from the frame before, not computed whole
    assert out["followed"] > out["frames"] // 2
