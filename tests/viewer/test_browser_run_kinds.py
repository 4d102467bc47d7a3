"""The run page on runs of particular shapes: a resumed run, step ids the page has to
cut, steps that are not steps of the graph."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import TraceBuilder, append_all, big_trace, resumed_run

from orchestrator.runtime import events as ev
from orchestrator.runtime._process import host_name, process_start
from orchestrator.store import fold_events

pytestmark = pytest.mark.browser


def _open_run(web: Browser, run_id: str) -> Any:
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready]")
    return page


def _statuses(page: Any) -> dict[str, str]:
    """Step id -> status of every step drawn in the DAG."""
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#dag g.step')].map(
            (g) => [g.getAttribute('data-step-id'), g.getAttribute('data-status')]))""")


def test_a_resumed_run_in_progress_is_not_shown_as_finished(web: Browser) -> None:
    t0 = time.time() - 5.2  # its last event now
    web.server.call(lambda: append_all(web.server.store, resumed_run("resumed-live", t0)))
    page = _open_run(web, "resumed-live")
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#live")).to_be_visible()
    # its duration grows (the one of its first execution was kept, without the ellipsis)
    expect(page.locator("#fact-duration")).to_contain_text("\u2026")
    first = page.locator("#fact-duration").inner_text()
    expect(page.locator("#fact-duration")).not_to_have_text(first, timeout=4000)
    # the tokens are its steps' (the first execution's total was kept)
    expect(page.locator("#fact-tokens")).to_contain_text("(5 + 3)")


def test_events_read_for_playback_after_the_scrubber_moved_back_are_not_replayed(
    web: Browser,
) -> None:
    """The events read past the window for playback came back after the scrubber had
    moved back (another window): they were added after that window's last event, so the
    page replayed events far ahead as if they followed it."""
    trace = big_trace("raced-run", 8000)  # 24,005 events: read from keyframes
    events = trace.events
    n = len(events)
    web.server.call(lambda: append_all(web.server.store, events), timeout=120)
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/raced-run")
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    label = page.locator("#replay-label")
    scrubber = page.locator("#scrubber")

    def at(index: int) -> None:
        e = events[index]
        expect(label).to_have_text(re.compile(
            rf"^event {index + 1}/{n} \u00b7 \+.* \u00b7 {e.kind} {e.step_id}$"))

    held: list[Any] = []
    page.route(re.compile(r".*/runs/raced-run/events\?(preview=true&)?limit=.*"),
               lambda route: held.append(route))
    scrubber.fill(str(n // 2))  # a keyframe and the 2,000 events after it
    at(n // 2)
    scrubber.fill(str(n // 2 + 1500))  # near the window's end: the next events are asked for
    at(n // 2 + 1500)
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(held) == 1
    back = n // 6
    scrubber.fill(str(back))  # another window, read while the playback read is held
    at(back)
    held[0].continue_()
    page.wait_for_timeout(500)
    ahead = back + 2500  # past the new window's 2,000 events
    scrubber.fill(str(ahead))
    at(ahead)
    expected = {s.id: s.status for s in fold_events(events[:ahead + 1]).steps}
    drawn = _statuses(page)
    assert drawn == {sid: expected.get(sid, "absent") for sid in drawn}


def test_long_step_ids_of_astral_characters_are_cut_between_characters(web: Browser) -> None:
    """A label is cut to a number of UTF-16 units: an id of emoji was cut inside one,
    leaving half a surrogate pair, drawn as a replacement character."""
    step_id = "\U0001f9e0" * 20 + "-step"
    b = TraceBuilder("astral-run", "astral")
    b.start([{"id": step_id, "tool": "calc", "args": {"expression": "1"}}])
    b.run_step(step_id, "tool", 0.0, 0.1, output=1)
    b.finish(0.2)
    web.server.call(lambda: append_all(web.server.store, b.events))
    page = _open_run(web, "astral-run")
    labels = page.evaluate("""() => [...document.querySelectorAll(
        '#dag text.label, #gantt text.row-label')].map((t) => [
            t.textContent.endsWith('\u2026'), t.textContent.isWellFormed()])""")
    assert labels == [[True, True], [True, True]]


def test_a_live_run_lists_the_child_runs_its_steps_start_after_the_page_opened(
    web: Browser,
) -> None:
    pid = os.getpid()
    writer = {"writer_host": host_name(), "writer_pid": pid, "writer_start": process_start(pid)}
    top = TraceBuilder("live-parent", "parent")
    top.start([{"id": "sub", "workflow": "child.yaml"}], **writer)
    top._add(ev.StepScheduled, 0.1, step_id="sub", step_kind="workflow", pool="workflow",
             priority=1.0)
    web.server.call(lambda: append_all(web.server.store, top.events))
    page = _open_run(web, "live-parent")
    expect(page.locator("#live")).to_be_visible()
    page.evaluate("""() => [...document.querySelectorAll('#dag g.step')]
        .find((g) => g.getAttribute('data-step-id') === 'sub')
        .dispatchEvent(new MouseEvent('click', {bubbles: true}))""")
    expect(page.locator('#detail [data-field="id"]')).to_have_text("sub")

    child = TraceBuilder("live-child", "child", t0=top.t0 + 0.2)
    child.start([{"id": "x", "tool": "calc", "args": {"expression": "1"}}],
                parent_run_id="live-parent", parent_step_id="sub", parent_attempt=1, **writer)
    started = ev.StepStarted(run_id="live-parent", seq=len(top.events), ts=top.t0 + 0.2,
                             step_id="sub", step_kind="workflow", attempt=1, input={})
    web.server.call(lambda: append_all(web.server.store, [*child.events, started]))
    expect(page.locator('#detail [data-field="status"]')).to_have_text("running")
    expect(page.locator("#detail a", has_text="live-child")).to_be_visible(timeout=10_000)
    expect(page.locator("#fact-child-runs")).to_have_text("1")


def test_a_live_run_whose_process_dies_while_followed_turns_interrupted(web: Browser) -> None:
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        b = TraceBuilder("dying-run", "dying")
        b.start([{"id": "a", "tool": "sleep", "args": {"seconds": 60}}],
                writer_host=host_name(), writer_pid=writer.pid,
                writer_start=process_start(writer.pid))
        b._add(ev.StepStarted, 0.1, step_id="a", step_kind="tool", attempt=1, input={})
        web.server.call(lambda: append_all(web.server.store, b.events))
        page = _open_run(web, "dying-run")
        expect(page.locator("#live")).to_be_visible()
        expect(page.locator("#run-status")).to_have_text("running")
    finally:
        writer.kill()
        writer.wait()
    expect(page.locator("#run-status")).to_have_text("interrupted", timeout=10_000)
    expect(page.locator("#live")).to_be_hidden()
    expect(page.locator("#run-interrupted")).to_contain_text("ponder resume dying-run")
    first = page.locator("#fact-duration").inner_text()
    assert "\u2026" not in first
    page.wait_for_timeout(1500)  # no longer redrawn as live: its duration stays
    assert page.locator("#fact-duration").inner_text() == first


def test_a_run_links_to_its_replays_and_forks(web: Browser) -> None:
    """A fork (replay --from) is a child run of the run it forks, started by no step: the
    page counted it among the child runs but linked to it nowhere. A fork names the step
    it runs again from: that step's details listed it as a run the step had started."""
    top = TraceBuilder("forked-top", "forked")
    top.start([{"id": "a", "tool": "calc", "args": {"expression": "1"}}])
    top.run_step("a", "tool", 0.0, 0.1, output=1)
    top.finish(0.2)
    copies = []
    for i, step in enumerate((None, "a")):  # a replay, then a fork from step a
        copy = TraceBuilder(f"forked-copy-{i}", "forked", t0=top.t0 + 10 + i)
        copy.start([{"id": "a", "tool": "calc", "args": {"expression": "1"}}],
                   parent_run_id="forked-top", parent_step_id=step)
        copy.run_step("a", "tool", 0.0, 0.1, output=1)
        copy.finish(0.2)
        copies += copy.events
    web.server.call(lambda: append_all(web.server.store, top.events + copies))
    page = _open_run(web, "forked-top")
    expect(page.locator("#fact-forks a")).to_have_text(["forked-copy-1", "forked-copy-0"])
    expect(page.locator("#fact-child-runs")).to_have_count(0)
    page.evaluate("""() => [...document.querySelectorAll('#dag g.step')]
        .find((g) => g.getAttribute('data-step-id') === 'a')
        .dispatchEvent(new MouseEvent('click', {bubbles: true}))""")
    expect(page.locator('#detail [data-field="id"]')).to_have_text("a")
    expect(page.locator("#detail a", has_text="forked-copy")).to_have_count(0)
    page.locator("#fact-forks a", has_text="forked-copy-1").click()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#fact-run-id")).to_have_text("forked-copy-1")
    expect(page.locator("#fact-parent")).to_have_text("forked-top from step a")
    expect(page.locator("#fact-parent").locator("xpath=preceding-sibling::dt[1]")) \
        .to_have_text("Fork of")
    runs = web.new_page()
    runs.goto(f"{web.server.url}/?top_level=1&workflow=forked")  # the module's store
    # holds other tests' runs, newer ones on the first page
    expect(runs.locator(".run-origin")).to_have_text(
        ["\u21b3 fork of forked-top from step a", "\u21b3 replay of forked-top"])


def test_a_dependency_that_is_no_step_of_the_run_can_be_clicked(web: Browser) -> None:
    """A step added at run time may name a dependency that is no step of the run (an
    imported trace, a plan referring to a step that never came): the details list it,
    and clicking it threw in the page (the graph looked for its place in the tree)."""
    b = TraceBuilder("ghost-dep", "ghost")
    b.start([{"id": "plan", "planner": "llmcompiler", "goal": "g"}])
    b.patch("plan", [{"id": "x", "kind": "tool", "deps": ["nowhere"], "parent": "plan",
                      "spec": {"tool": "calc"}}], at=0.1)
    b.run_step("x", "tool", 0.2, 0.3, output=1)
    b.finish(0.4)
    web.server.call(lambda: append_all(web.server.store, b.events))
    page = _open_run(web, "ghost-dep")
    page.evaluate("""() => [...document.querySelectorAll('#dag g.step')]
        .find((g) => g.getAttribute('data-step-id') === 'x')
        .dispatchEvent(new MouseEvent('click', {bubbles: true}))""")
    page.click('#detail button.dep[data-goto="nowhere"]')
    expect(page.locator("#detail")).to_contain_text("Step nowhere does not exist")


def test_steps_timed_outside_the_run_by_out_of_order_clocks_stay_on_the_timeline(
    web: Browser,
) -> None:
    """Events stored in order but timed by several processes' clocks: a step scheduled
    before the run's start, another ending after the run's end. Their bars were drawn
    over the labels and past the timeline's right edge."""
    b = TraceBuilder("skewed-run", "skewed")
    b.start([{"id": "early", "tool": "calc", "args": {"expression": "1"}},
             {"id": "late", "tool": "calc", "args": {"expression": "2"}}], at=1.0)
    b.run_step("early", "tool", 1.2, 1.5, output=1, scheduled=0.2)
    b.run_step("late", "tool", 1.6, 9.0, output=2)
    b.finish(2.0)
    events = sorted(b.events, key=lambda e: (e.kind == "run_finished", e.kind != "run_started",
                                             e.seq))
    events = [e.model_copy(update={"seq": i}) for i, e in enumerate(events)]
    web.server.call(lambda: append_all(web.server.store, events))
    page = _open_run(web, "skewed-run")
    bars = page.evaluate("""() => {
        const svg = document.querySelector('#gantt svg');
        const width = Number(svg.getAttribute('width'));
        return [...svg.querySelectorAll('rect.att, rect.queued')].map((r) => [
            Number(r.getAttribute('x')), Number(r.getAttribute('x')) + Number(r.getAttribute('width')),
            width]);
    }""")
    assert len(bars) == 3
    for x0, x1, width in bars:
        assert 190 <= x0 and x1 <= width, bars  # right of the labels, inside the timeline
