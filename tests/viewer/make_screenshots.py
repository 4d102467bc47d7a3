"""Write the viewer's screenshots into docs/img/: ``python tests/viewer/make_screenshots.py``.

Serves a MemoryStore holding a few hand-built runs (fixed times, so the pictures
only change when the page does) and photographs the runs page, a run page with a
step selected, and the same run halfway through its replay.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from playwright.sync_api import sync_playwright
from viewer_server import LiveServer, launch_chromium
from viewer_traces import (
    T0,
    TraceBuilder,
    append_all,
    research_trace,
)

from orchestrator.runtime import events as ev
from orchestrator.store import MemoryStore

OUT = Path(__file__).parents[2] / "docs" / "img"


def _other_runs() -> list[object]:
    events: list[object] = []
    runs = [("summarize", "succeeded"), ("triage", "failed"), ("summarize", "succeeded"),
            ("extract-invoices", "cancelled")]
    for i, (name, status) in enumerate(runs):
        b = TraceBuilder(f"{name}-{i:02d}a9f", name, t0=T0 - 3600 * (i + 1))
        b.start([{"id": "load", "tool": "calc"},
                 {"id": "answer", "prompt": "{{ steps.load.output }}"}])
        b.run_step("load", "tool", 0.0, 0.2, output=1)
        b.run_step("answer", "llm", 0.2, 2.5 + i, output="ok", tokens=(400 + 50 * i, 80 + i),
                   fail="HTTP 500 from the engine" if status == "failed" else None)
        b.finish(2.6 + i, status=status, tokens=(400 + 50 * i, 80 + i),
                 error="step 'answer' failed" if status == "failed" else None)
        events.extend(b.events)
    live = TraceBuilder("ask-live-77c1", "ask", t0=time.time() - 42)
    live.start([{"id": "think", "prompt": "hi"}])
    live._add(ev.StepStarted, 0.1, step_id="think", step_kind="llm", attempt=1,
              input={"prompt": "hi"})
    events.extend(live.events)
    return events


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    store = MemoryStore()
    server = LiveServer(store).start()
    try:
        server.call(lambda: append_all(store, research_trace("7f3e2a9c41d0b5e8").events
                                       + _other_runs()))
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 560})
            page.goto(f"{server.url}/")
            page.wait_for_selector("body[data-loaded]")
            page.screenshot(path=str(OUT / "viewer-runs.png"))

            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{server.url}/runs/7f3e2a9c41d0b5e8")
            page.wait_for_selector("body[data-ready]")
            page.click('#dag g.step[data-step-id="plan.2"]')
            page.wait_for_timeout(200)
            page.screenshot(path=str(OUT / "viewer-run.png"), full_page=True)

            page.click('#dag g.step[data-step-id="plan.4.b"]')
            page.locator("#scrubber").fill("27")
            page.wait_for_timeout(200)
            page.screenshot(path=str(OUT / "viewer-replay.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    for name in ("viewer-runs.png", "viewer-run.png", "viewer-replay.png"):
        print(OUT / name)


if __name__ == "__main__":
    main()
