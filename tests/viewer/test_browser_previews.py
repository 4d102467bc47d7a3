"""The run page reads a step's large output as a preview first, marked "truncated, N
bytes", and reads it whole when the step is opened: a run of 40 steps with 4.75 MB
outputs took some 13 s to open, its first read carrying every output whole. The panel
lays out the first 100,000 characters of a value until the user asks for all of it."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import TraceBuilder, append_all

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start

pytestmark = pytest.mark.browser

N_STEPS = 5
BIG = 2_000_000  # characters of each step's output


def _click_step(page: Any, step_id: str) -> None:
    page.wait_for_selector(f'#dag g.step[data-step-id="{step_id}"]', state="attached")
    page.evaluate("""(id) => [...document.querySelectorAll('#dag g.step')]
        .find((g) => g.getAttribute('data-step-id') === id)
        .dispatchEvent(new MouseEvent('click', {bubbles: true}))""", step_id)


def test_a_large_output_is_previewed_then_read_whole_when_opened(web: Browser) -> None:
    b = TraceBuilder("big-outputs", "big")
    b.start([{"id": f"s{i}", "tool": "echo", "args": {}} for i in range(N_STEPS)])
    for i in range(N_STEPS):
        b.run_step(f"s{i}", "tool", i, i + 1, output=f"{i}" * BIG)
    b.finish(N_STEPS + 1.0)
    web.server.call(lambda: append_all(web.server.store, b.events))
    page = web.new_page()
    sent: list[int] = []
    page.on("response", lambda r: sent.append(len(r.body()))
            if "/events" in r.url and "step_id=" not in r.url else None)
    held: list[Any] = []

    def hold(route: Any) -> None:  # the step's own read, held back
        held.append(route)

    page.route("**/events?step_id=*", hold)
    page.goto(f"{web.server.url}/runs/big-outputs")
    page.wait_for_selector("body[data-ready]")
    assert sent and sum(sent) < N_STEPS * 50_000, sent

    _click_step(page, "s3")
    output = page.locator('#detail [data-field="output"]')
    expect(output).to_contain_text(f"[truncated, {BIG:,} bytes]")  # the preview, marked
    assert len(output.inner_text()) < 20_000
    for _ in range(50):  # the step's own read was asked for
        if held:
            break
        page.wait_for_timeout(100)
    assert held
    for route in held:
        route.continue_()
    page.unroute("**/events?step_id=*", hold)
    expect(output).not_to_contain_text("truncated")
    # laid out up to SHOWN_MAX characters (detail.js) until the user asks for all of it
    expect(output).to_have_text(("3" * BIG)[:99_999] + "\u2026")
    page.locator("#detail button.show-all").click()
    expect(output).to_have_text("3" * BIG)


def test_a_live_run_s_other_steps_do_not_read_an_opened_step_again(web: Browser) -> None:
    store = web.server.store
    pid = os.getpid()
    b = TraceBuilder("big-live", "big-live", t0=time.time() - 10)
    b.start([{"id": "big", "tool": "echo", "args": {}}],
            writer_host=host_name(), writer_pid=pid, writer_start=process_start(pid))
    b.run_step("big", "tool", 0.0, 1.0, output="z" * 200_000)
    web.server.call(lambda: append_all(store, b.events))
    page = web.new_page()
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "step_id=" in r.url else None)
    page.goto(f"{web.server.url}/runs/big-live")
    expect(page.locator("#live")).to_have_text("live")
    _click_step(page, "big")
    output = page.locator('#detail [data-field="output"]')
    expect(output).to_have_text("z" * 99_999 + "\u2026")
    seq = b.events[-1].seq
    for i in range(4):  # another step's events, one after the other
        seq += 1
        event = ev.StepScheduled(run_id="big-live", seq=seq, ts=time.time(),
                                 step_id=f"other{i}", step_kind="tool", pool="tool",
                                 priority=1.0)
        web.server.call(lambda e=event: store.append([e]))
        expect(page.locator("#fact-events")).to_contain_text(str(seq + 1))
    page.wait_for_timeout(500)
    expect(output).to_have_text("z" * 99_999 + "\u2026")
    assert len(reads) == 1, reads
