"""The page's own logic (layout, fold, critical path), run as ES modules in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from viewer_server import Browser
from viewer_traces import REPLAN_CASES, append_all, research_trace, resumed_run, xss_trace

pytestmark = pytest.mark.browser

JS = Path(__file__).parent / "js"
LAYOUT_CHECK = (JS / "layout_check.js").read_text()
FOLD_CHECK = (JS / "fold_check.js").read_text()
KEYFRAME_CHECK = (JS / "keyframe_check.js").read_text()


def test_layout_points_every_edge_right_and_never_overlaps(web: Browser) -> None:
    page = web.new_page()
    page.goto(f"{web.server.url}/")
    problems, n_steps = page.evaluate(LAYOUT_CHECK)
    assert problems == []
    assert n_steps > 150


def test_fold_critical_path_and_replan_rule_match_the_server(web: Browser) -> None:
    page = web.new_page()
    page.goto(f"{web.server.url}/")
    out = page.evaluate(FOLD_CHECK, [reason for reason, _ in REPLAN_CASES])
    assert out["n"] == 12
    assert out["attempts"] == [[1, 0, 2, "retrying"], [2, 3, 5, "succeeded"]]
    assert out["critical"] == ["b", "d"]  # b (retried) ended last among d's inputs
    assert out["midStatus"] == {"a": "succeeded", "b": "retrying", "c": "pending", "d": "pending"}
    assert out["midCritical"] == ["b"]
    assert out["back"] == "running"  # moving back refolds from the start
    # a copy of a state shares its steps (no step copied), and each copies a step to
    # change it, leaving the other's as it was
    assert out["shared"] is True
    assert out["apart"] == ["succeeded", 1, "running", 2, {"again": 1}, "succeeded",
                            "succeeded", "failed", True]
    assert out["tokens"] == [3, 1]
    assert out["replan"] == [expected for _, expected in REPLAN_CASES]


def test_a_server_keyframe_reads_back_as_the_page_s_own_fold(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, research_trace("keyframed").events))
    web.server.call(lambda: append_all(web.server.store, xss_trace("keyframed-xss").events))
    web.server.call(lambda: append_all(web.server.store, resumed_run("keyframed-resumed")))
    page = web.new_page()
    page.goto(f"{web.server.url}/")
    for run_id in ("keyframed", "keyframed-xss", "keyframed-resumed"):
        out = page.evaluate(KEYFRAME_CHECK, run_id)
        assert out["problems"] == []
        assert out["steps"] >= 2 and out["partial"]
