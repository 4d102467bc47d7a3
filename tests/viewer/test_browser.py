"""The viewer's pages in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
import time
from functools import partial
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from playwright.sync_api import expect
from viewer_server import Browser, LiveServer, launch_chromium
from viewer_traces import (
    DEMO_STEPS,
    RESEARCH_REPLANNED,
    XSS,
    XSS_IMG,
    XSS_SCRIPT,
    FlakyStore,
    append_all,
    big_trace,
    demo_workflow,
    failing_workflow,
    many_runs,
    research_trace,
    run_into,
    stopped_run,
    xss_trace,
)

from orchestrator import Workflow
from orchestrator.spec.models import ToolStep
from orchestrator.store import MemoryStore, fold_events
from orchestrator.viewer import EVENTS_PAGE_MAX
from orchestrator.viewer._replay import KEYFRAME_EVERY

pytestmark = pytest.mark.browser


def _statuses(page: Any) -> dict[str, str]:
    """Step id -> status of every step drawn in the DAG."""
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#dag g.step')].map(
            (g) => [g.getAttribute('data-step-id'), g.getAttribute('data-status')]))""")


def _click_step(page: Any, step_id: str) -> None:
    """Click a step's node, whatever characters its id holds."""
    page.evaluate("""(id) => [...document.querySelectorAll('#dag g.step')]
        .find((g) => g.getAttribute('data-step-id') === id)
        .dispatchEvent(new MouseEvent('click', {bubbles: true}))""", step_id)


def _open_run(web: Browser, run_id: str, **size: int) -> Any:
    page = web.new_page(**size)
    page.goto(f"{web.server.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready]")
    return page


def test_runs_page_lists_runs_filters_and_pages(web: Browser) -> None:
    store = web.server.store
    run_id = web.server.call(lambda: run_into(store, demo_workflow("listed")))
    web.server.call(lambda: run_into(store, failing_workflow("listed")))
    page = web.new_page()
    page.goto(f"{web.server.url}/?workflow=listed")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_contain_text("listed")
    expect(row).to_contain_text("succeeded")
    expect(row.locator("td").nth(6)).to_have_text(str(len(DEMO_STEPS)))
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    page.select_option("#filter-status", "failed")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(page.locator("#runs tbody tr")).to_contain_text("failed")
    assert "status=failed" in page.url
    row_link = page.locator("#runs tbody tr a.run-link")
    row_link.click()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#run-status")).to_have_text("failed")

    web.server.call(lambda: append_all(store, many_runs(
        120, workflow=lambda i: "paged")))
    page.goto(f"{web.server.url}/?workflow=paged")
    expect(page.locator("#runs tbody tr")).to_have_count(50)
    expect(page.locator("#runs tbody tr").first).to_have_attribute("data-run-id", "run-0119")
    page.click("#older")
    expect(page.locator("#page-label")).to_have_text("runs 51\u2013100")
    page.click("#older")
    expect(page.locator("#runs tbody tr")).to_have_count(20)
    expect(page.locator("#older")).to_be_disabled()


def test_run_page_draws_every_step_and_edge(web: Browser) -> None:
    run_id = web.server.call(lambda: run_into(web.server.store, demo_workflow("drawn")))
    page = _open_run(web, run_id)
    assert _statuses(page) == {sid: "succeeded" for sid in DEMO_STEPS}
    edges = set(page.eval_on_selector_all("#dag path.edge", "ps => ps.map(p => p.dataset.edge)"))
    assert {"a\u2192c", "c\u2192d", "nap\u2192d"} <= edges
    # the map's items are drawn inside its box, and fold into it on request
    page.click('[data-toggle="m"]')
    expect(page.locator('#dag g.step[data-step-id="m[0]"]')).to_have_count(0)
    expect(page.locator('#dag g.step[data-step-id="m"] .toggle')).to_contain_text("+3")
    rows = page.locator("#gantt g.row")
    expect(rows).to_have_count(len(DEMO_STEPS))


def test_clicking_a_step_shows_its_input_output_attempts_and_tokens(web: Browser) -> None:
    run_id = web.server.call(lambda: run_into(web.server.store, demo_workflow("clicked")))
    page = _open_run(web, run_id)
    page.click('#dag g.step[data-step-id="c"]')
    detail = page.locator("#detail")
    expect(detail.locator('[data-field="id"]')).to_have_text("c")
    expect(detail.locator('[data-field="output"]')).to_have_text("9")
    expect(detail.locator('[data-field="args"]')).to_contain_text('"expression": "3 * 3"')
    expect(detail).to_contain_text("Tool call: calc")
    expect(page.locator('#dag g.step[data-step-id="c"]')).to_have_class(re.compile(r"\bselected\b"))

    web.server.call(lambda: append_all(web.server.store, research_trace("clicked-llm").events))
    page = _open_run(web, "clicked-llm")
    _click_step(page, "answer")
    expect(detail := page.locator("#detail")).to_contain_text("Prompt (rendered)")
    expect(detail.locator('[data-field="prompt"]')).to_have_text("Answer using 97")
    expect(detail.locator('[data-field="system"]')).to_have_text("You are a careful astronomer.")
    expect(detail.locator('[data-field="raw"]')).to_have_text(
        "Mars and Jupiter have 97 moons together.")
    expect(detail).to_contain_text("120 prompt + 14 completion")
    _click_step(page, "plan.2")
    expect(detail.locator("table.attempts tbody tr")).to_have_count(3)  # 2 attempts + an error
    expect(detail).to_contain_text("HTTP 503 from the search backend")
    replanned = page.eval_on_selector_all("#dag g.step.replanned",
                                          "gs => gs.map(g => g.dataset.stepId)")
    assert set(replanned) == RESEARCH_REPLANNED
    _click_step(page, "plan")  # the joiner's verdicts and a rejected plan
    expect(detail.locator('[data-field="decisions"]')).to_contain_text(
        "the count may be out of date")
    expect(detail.locator('[data-field="decisions"] tbody tr')).to_have_count(4)
    expect(detail.locator('[data-field="plan-errors"]')).to_contain_text(
        "round 2, try 1: unknown_tool (line 1)")
    expect(detail.locator('[data-field="plan-errors"]')).to_contain_text(
        "round 2, joiner try 1: bad_joiner")
    # the joiner's two verdicts and the two rejected answers
    expect(page.locator("#gantt path.decision")).to_have_count(4)


def test_the_scrubber_and_player_move_the_graph_and_timeline_through_time(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, research_trace("scrubbed").events))
    page = _open_run(web, "scrubbed")
    n_events = len(research_trace().events)
    expect(page.locator("#replay-label")).to_contain_text(f"event {n_events}/{n_events}")
    critical = page.eval_on_selector_all("#dag g.step.critical", "gs => gs.map(g => g.dataset.stepId)")
    assert {"question", "plan", "plan.2", "plan.3", "answer"} <= set(critical)

    page.locator("#scrubber").fill("0")  # only run_started: the declared steps, all pending
    expect(page.locator("#replay-label")).to_contain_text("run_started")
    assert _statuses(page) == {"question": "pending", "plan": "pending", "answer": "pending"}
    assert page.eval_on_selector("#gantt svg", "s => s.dataset.rows") == "0"

    page.locator("#scrubber").fill("12")  # the plan has streamed its first steps
    expect(page.locator("#replay-label")).to_contain_text("event 13/")
    states = _statuses(page)
    assert states["question"] == "succeeded" and states["plan"] == "running"
    assert "plan.1" in states and "plan.4" not in states  # not added yet
    bars = page.eval_on_selector("#gantt svg", "s => s.dataset.rows")
    assert 0 < int(bars) < 11

    page.keyboard.press("ArrowRight")
    expect(page.locator("#replay-label")).to_contain_text("event 14/")
    page.select_option("#speed", "1000")
    page.locator("#scrubber").fill("0")
    page.click("#btn-play")
    expect(page.locator("#replay-label")).to_contain_text(f"event {n_events}/{n_events}")
    expect(page.locator("#btn-play")).to_have_attribute("aria-pressed", "false")
    assert set(_statuses(page).values()) == {"succeeded"}


def test_a_run_whose_process_is_gone_shows_interrupted_and_does_not_tick(web: Browser) -> None:
    store = web.server.store
    web.server.call(lambda: append_all(store, stopped_run("gone-run", writer_alive=False)
                                       + stopped_run("alive-run", writer_alive=True)))
    page = web.new_page()
    page.goto(f"{web.server.url}/?workflow=stopped")
    gone = page.locator('tr[data-run-id="gone-run"]')
    expect(gone.locator("td").nth(2)).to_contain_text("interrupted")
    expect(gone.locator("td").nth(2)).to_contain_text("ponder resume gone-run")
    expect(page.locator('tr[data-run-id="alive-run"] td').nth(2)).to_have_text("running")
    expect(page.locator('tr[data-run-id="alive-run"] td').nth(4)).to_contain_text("\u2026")
    duration = gone.locator("td").nth(4)
    expect(duration).to_have_text("100 ms")  # to its last event, as on its page: no "\u2026"
    assert "is-running" not in (gone.get_attribute("class") or "")

    page = _open_run(web, "gone-run")
    expect(page.locator("#run-status")).to_have_text("interrupted")
    expect(page.locator("#run-interrupted")).to_contain_text("ponder resume gone-run")
    expect(page.locator("#live")).to_be_hidden()
    first = page.locator("#fact-duration").inner_text()
    assert "\u2026" not in first
    time.sleep(1.5)  # a live run's summary is redrawn every second
    assert page.locator("#fact-duration").inner_text() == first


def test_an_interrupted_sub_workflows_run_says_to_resume_the_run_above_it(web: Browser) -> None:
    store = web.server.store
    child = {"parent_run_id": "top-run", "parent_step_id": "b", "parent_attempt": 1}
    web.server.call(lambda: append_all(
        store, stopped_run("top-run", writer_alive=False)
        + stopped_run("sub-run", writer_alive=False, **child)))
    page = web.new_page()
    page.goto(f"{web.server.url}/?workflow=stopped")
    cell = page.locator('tr[data-run-id="sub-run"] td').nth(2)
    expect(cell).to_contain_text("ponder resume top-run")
    expect(page.locator('tr[data-run-id="top-run"] td').nth(2)).to_contain_text(
        "ponder resume top-run")

    page = _open_run(web, "sub-run")
    expect(page.locator("#run-interrupted")).to_contain_text(
        "sub-workflow's run of run top-run: ponder resume top-run continues both")
    expect(page.locator("#live")).to_be_hidden()


def test_a_live_run_updates_without_a_reload(web: Browser) -> None:
    store = web.server.store
    gate = web.server.call(_new_event)

    async def wait_at_gate() -> str:
        await gate.wait()
        return "opened"

    wf = Workflow("live")
    wf.register_tool(wait_at_gate, "gate")
    wf.tool("first", "calc", expression="20 + 1")
    wf.tool("wait", "gate")
    wf.add(ToolStep(id="after", tool="calc", args={"expression": "${steps.first.output} * 2"},
                    after=["wait"]))
    running = web.server.submit(lambda: run_into(store, wf, run_id="live-run"))
    for _ in range(100):
        if web.server.call(lambda: store.events("live-run")):
            break
        time.sleep(0.02)
    page = _open_run(web, "live-run")
    page.evaluate("() => { window.__sameDocument = true; }")
    expect(page.locator("#live")).to_be_visible()
    expect(page.locator('#dag g.step[data-step-id="wait"]')).to_have_attribute(
        "data-status", "running")
    assert _statuses(page)["after"] == "pending"
    expect(page.locator("#run-status")).to_have_text("running")

    web.server.call(lambda: _set(gate))
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=10_000)
    expect(page.locator('#dag g.step[data-step-id="after"]')).to_have_attribute(
        "data-status", "succeeded")
    expect(page.locator("#live")).to_be_hidden()
    page.click('#dag g.step[data-step-id="after"]')
    expect(page.locator('#detail [data-field="output"]')).to_have_text("42")
    assert page.evaluate("() => window.__sameDocument") is True
    assert running.result(10) == "live-run"


async def _new_event() -> anyio.Event:
    return anyio.Event()


async def _set(event: anyio.Event) -> None:
    event.set()


INJECTED = """() => ({
    xss: window.__xss,
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.scripts].map((s) => s.getAttribute('src')),
    handlers: [...document.querySelectorAll('*')].filter(
        (e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
})"""


def _assert_inert(page: Any, script: str | None) -> None:
    page.wait_for_timeout(200)  # give a payload that would run the time to run
    assert page.evaluate(INJECTED) == {
        "xss": None, "imgs": 0, "scripts": [script] if script else [], "handlers": 0,
    }


def test_script_and_event_handler_payloads_in_a_trace_stay_text(web: Browser) -> None:
    web.server.call(lambda: append_all(web.server.store, xss_trace().events))
    page = web.new_page()
    page.goto(f"{web.server.url}/?status=failed")
    row = page.locator('tr[data-run-id="xss-run"]')
    expect(row).to_contain_text(XSS_SCRIPT)  # shown as the characters it is made of
    _assert_inert(page, "/static/js/runs.js")

    page.goto(f"{web.server.url}/runs/xss-run")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#run-workflow")).to_have_text(f"evil{XSS}")
    expect(page.locator("#run-error")).to_contain_text(XSS)
    for step_id in (f"x{XSS}", "step_a"):
        _click_step(page, step_id)
        expect(page.locator('#detail [data-field="id"]')).to_have_text(step_id)
    detail = page.locator("#detail")
    expect(detail.locator('[data-field="prompt"]')).to_have_text(f"Rendered prompt {XSS}")
    expect(detail.locator('[data-field="raw"]')).to_have_text(XSS)
    _click_step(page, f"x{XSS}")
    expect(detail.locator('[data-field="args"]')).to_contain_text(XSS_IMG.replace('"', '\\"'))
    expect(detail.locator('[data-field="error"]')).to_contain_text(XSS)
    expect(page.locator('#dag g.step.replanned')).to_have_count(1)
    page.hover("#gantt g.row >> nth=1")
    _assert_inert(page, "/static/js/run.js")

    page.goto(f"{web.server.url}/runs/{XSS_IMG}")  # the 404 page echoes the id, escaped
    expect(page.locator("#not-found")).to_contain_text(XSS_IMG)
    _assert_inert(page, None)
    assert web.dialogs == []


def test_a_run_whose_id_holds_slashes_and_markup_opens_from_the_runs_page(web: Browser) -> None:
    run_id = f"team/{XSS}"
    web.server.call(lambda: append_all(web.server.store, xss_trace(run_id).events))
    page = web.new_page()
    page.goto(f"{web.server.url}/?status=failed")
    page.locator("#runs tbody tr").filter(has_text=run_id).locator("a.run-link").click()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#missing")).to_be_hidden()
    expect(page.locator("#fact-run-id")).to_have_text(run_id)
    expect(page.locator("#crumb-run")).to_have_text(run_id)
    _assert_inert(page, "/static/js/run.js")


def test_run_ids_ending_like_an_api_route_each_open_their_own_run(web: Browser) -> None:
    sizes = {"ids/a": 2, "ids/a/events": 3, "ids/a/stream": 4}
    for run_id, n in sizes.items():
        web.server.call(partial(append_all, web.server.store, big_trace(run_id, n).events))
    for run_id, n in sizes.items():
        page = _open_run(web, quote(run_id, safe=""))
        expect(page.locator("#missing")).to_be_hidden()
        expect(page.locator("#fact-run-id")).to_have_text(run_id)
        expect(page.locator("#fact-steps")).to_have_text(str(n + 1))
        expect(page.locator("#fact-events")).to_have_text(str(3 * n + 5))


def test_a_run_of_more_events_than_one_page_is_fetched_page_by_page(web: Browser) -> None:
    trace = big_trace("paged-run", 3000)  # 9005 events: two pages
    n_events = len(trace.events)
    web.server.call(lambda: append_all(web.server.store, trace.events), timeout=120)
    page = web.new_page()
    held: list[Any] = []  # the second page's request, answered once the first is drawn
    sizes: list[int] = []

    def hold_later_pages(route: Any) -> None:
        if "after_seq=" in route.request.url:
            held.append(route)
        else:
            route.continue_()

    def on_response(response: Any) -> None:
        if "/paged-run/events" in response.url:
            sizes.append(len(response.json()["events"]))

    page.route(re.compile(r".*/api/v1/runs/paged-run/events.*"), hold_later_pages)
    page.on("response", on_response)
    page.goto(f"{web.server.url}/runs/paged-run")
    # the first page is drawn while the rest is still coming
    expect(page.locator("#fact-events")).to_have_text(str(EVENTS_PAGE_MAX))
    expect(page.locator("#loading")).to_have_text(f"loading events \u00b7 5000 of {n_events}")
    expect(page.locator("#replay-label")).to_contain_text("event 5000/5000")
    assert page.evaluate("() => document.body.dataset.ready") is None
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1 and "after_seq=4999" in held[0].request.url
    held[0].continue_()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#fact-events")).to_have_text(str(n_events))
    expect(page.locator("#fact-steps")).to_have_text("3001")
    expect(page.locator("#loading")).to_be_hidden()
    expect(page.locator("#replay-label")).to_contain_text(f"event {n_events}/{n_events}")
    assert sizes == [EVENTS_PAGE_MAX, n_events - EVENTS_PAGE_MAX]
    page.locator("#scrubber").fill("6000")  # an event of the second page replays too
    expect(page.locator("#replay-label")).to_contain_text(f"event 6001/{n_events}")


def test_the_graph_is_drawn_from_the_first_events_page_before_the_run_summary(
        web: Browser) -> None:
    # The summary of a long run takes the server seconds (it folds every event): the
    # page draws the steps and replays the events it has without waiting for it.
    run_id = web.server.call(lambda: run_into(web.server.store, demo_workflow("unsummed")))
    page = web.new_page()
    held: list[Any] = []
    page.route(re.compile(r".*/api/v1/runs/[^/]*\?steps=false$"),
               lambda route: held.append(route))
    page.goto(f"{web.server.url}/runs/{run_id}")
    page.wait_for_function("() => window.__ponderFirstRenderMs !== undefined")
    assert _statuses(page) == {sid: "succeeded" for sid in DEMO_STEPS}
    expect(page.locator("#run-workflow")).to_have_text("unsummed")  # from run_started
    page.locator("#scrubber").fill("0")
    expect(page.locator("#replay-label")).to_contain_text("event 1/")
    edges = set(page.eval_on_selector_all("#dag path.edge", "ps => ps.map(p => p.dataset.edge)"))
    assert "a\u2192c" not in edges  # a declared step's deps come with the summary
    assert page.evaluate("() => document.body.dataset.ready") is None
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator('#dag path.edge[data-edge="a\u2192c"]')).to_have_count(1)
    expect(page.locator('#dag path.edge[data-edge="nap\u2192d"]')).to_have_count(1)


def test_a_run_deleted_before_its_summary_came_says_so(web: Browser) -> None:
    run_id = web.server.call(lambda: run_into(web.server.store, demo_workflow("vanishing")))
    page = web.new_page()
    page.route(re.compile(r".*/api/v1/runs/[^/]*\?steps=false$"), lambda route: route.fulfill(
        status=404, content_type="application/json", body='{"detail": "no such run"}'))
    page.goto(f"{web.server.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#missing")).to_be_visible()
    web.page_errors.clear()  # the browser logs the 404 it was given


def test_an_unknown_run_gets_a_404_page_with_a_way_back(web: Browser) -> None:
    page = web.new_page()
    response = page.goto(f"{web.server.url}/runs/no-such-run")
    assert response is not None and response.status == 404
    expect(page.locator("#not-found")).to_contain_text("no-such-run")
    page.click("#back")
    expect(page).to_have_url(f"{web.server.url}/")
    page.wait_for_selector("body[data-loaded]")


def test_a_run_of_ten_thousand_steps_renders_fast_and_stays_responsive(web: Browser) -> None:
    trace = big_trace("big-run", 10_000)
    web.server.call(lambda: append_all(web.server.store, trace.events), timeout=120)
    page = web.new_page()
    t0 = time.perf_counter()
    page.goto(f"{web.server.url}/runs/big-run")
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    wall_ms = (time.perf_counter() - t0) * 1000
    first_render_ms = page.evaluate("() => window.__ponderFirstRenderMs")
    drawn = int(page.eval_on_selector("#dag svg", "s => s.dataset.drawnNodes"))
    assert page.eval_on_selector("#fact-steps", "e => e.textContent") == "10001"
    assert 0 < drawn < 1000  # only what is in view is in the DOM

    t1 = time.perf_counter()
    page.locator("#scrubber").fill(str(len(trace.events) // 2))
    expect(page.locator("#replay-label")).to_contain_text(f"event {len(trace.events) // 2 + 1}/")
    scrub_ms = (time.perf_counter() - t1) * 1000
    t2 = time.perf_counter()
    page.click("#dag g.step.node >> nth=0")
    expect(page.locator('#detail [data-field="id"]')).to_be_visible()
    click_ms = (time.perf_counter() - t2) * 1000
    t3 = time.perf_counter()
    page.eval_on_selector("#dag", "d => { d.scrollTop = 3000; d.scrollLeft = 4000; }")
    page.wait_for_function("() => document.querySelector('#dag svg').dataset.drawnNodes !== ''")
    scroll_ms = (time.perf_counter() - t3) * 1000
    all_ms = page.evaluate("() => window.__ponderAllEventsMs")
    print(f"\n10k steps, {len(trace.events)} events: first render {first_render_ms:.0f} ms "
          f"after navigation, every event drawn {all_ms:.0f} ms ({wall_ms:.0f} ms wall), "
          f"{drawn} nodes in the DOM; "
          f"scrub {scrub_ms:.0f} ms, click {click_ms:.0f} ms, scroll {scroll_ms:.0f} ms")
    assert first_render_ms <= all_ms < 15_000
    assert scrub_ms < 2_000 and click_ms < 2_000


def test_a_live_page_says_when_the_store_stops_answering_and_recovers(chromium: Any) -> None:
    store = FlakyStore()
    server = LiveServer(store, poll_interval_s=0.05).start()
    try:
        b = research_trace("flaky")
        server.call(lambda: append_all(store, b.events[:5]))
        web = Browser(server, chromium)
        page = _open_run(web, "flaky")
        live = page.locator("#live")
        expect(live).to_have_text("live")
        server.call(lambda: store.set_down("cannot reach the trace store: server restarting"))
        expect(live).to_contain_text("trace store unreachable")
        expect(live).to_have_attribute("title", re.compile("server restarting"))
        server.call(lambda: append_all(store, b.events[5:]))
        server.call(lambda: store.set_down(None))
        expect(page.locator("#run-status")).to_have_text("succeeded", timeout=10_000)
        expect(live).to_be_hidden()
        expect(page.locator("#fact-events")).to_have_text(str(len(b.events)))

        doomed = research_trace("doomed")
        server.call(lambda: append_all(store, doomed.events[:5]))
        page = _open_run(web, "doomed")
        server.call(lambda: store.delete_runs(["doomed"]))
        expect(page.locator("#live")).to_have_text("deleted from the trace store")
        assert web.page_errors == []
    finally:
        server.stop()


def test_with_a_token_the_page_works_from_its_url_and_refuses_without(chromium: Any) -> None:
    store = MemoryStore()
    server = LiveServer(store, token="tok-123").start()
    try:
        server.call(lambda: append_all(store, research_trace("guarded").events))
        context = chromium.new_context()
        page = context.new_page()
        response = page.goto(f"{server.url}/?token=tok-123")
        assert response is not None and response.status == 200
        expect(page.locator('tr[data-run-id="guarded"]')).to_be_visible()
        page.click('tr[data-run-id="guarded"] a.run-link')  # no token in this link: the cookie
        page.wait_for_selector("body[data-ready]")
        expect(page.locator("#run-status")).to_have_text("succeeded")
        context.close()
        other = chromium.new_context()
        refused = other.new_page().goto(f"{server.url}/runs/guarded")
        assert refused is not None and refused.status == 401
        other.close()
    finally:
        server.stop()


def test_chromium_is_debians(chromium: Any) -> None:
    assert launch_chromium  # the fixture launched /usr/bin/chromium, not a downloaded build
    assert chromium.version


def test_scrubbing_far_into_a_long_run_reads_keyframes_not_every_event(web: Browser) -> None:
    trace = big_trace("far-run", 8000)  # 24,005 events: more than the page keeps
    events = trace.events
    n = len(events)
    web.server.call(lambda: append_all(web.server.store, events), timeout=120)
    page = web.new_page()
    read: list[int] = []  # events the page was sent, by their run position
    page.on("response", lambda r: read.append(len(r.json()["events"]))
            if "/far-run/events" in r.url and "step_id=" not in r.url else None)
    page.goto(f"{web.server.url}/runs/far-run")
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    expect(page.locator("#fact-events")).to_have_text(str(n))
    label = page.locator("#replay-label")
    # the last event named, though the page drew it from the tip's keyframe alone
    expect(label).to_have_text(re.compile(rf"^event {n}/{n} \u00b7 \+.* \u00b7 run_finished$"))
    assert set(_statuses(page).values()) == {"succeeded"}
    assert page.evaluate("() => document.body.dataset.ready") == "1"
    assert sum(read) < n  # the page did not read the run whole

    kf_at = 2 * KEYFRAME_EVERY - 1  # a keyframe's own position: its event is named too
    page.locator("#scrubber").fill(str(kf_at))
    e = events[kf_at]
    expect(label).to_have_text(re.compile(
        rf"^event {kf_at + 1}/{n} \u00b7 \+.* \u00b7 {e.kind} {getattr(e, 'step_id', None)}$"))

    at = n // 3  # a keyframe and the events after it
    page.locator("#scrubber").fill(str(at))
    expect(label).to_contain_text(re.compile(rf"event {at + 1}/{n} \u00b7 \+"))
    expected = {s.id: s.status for s in fold_events(events[:at + 1]).steps}
    drawn = _statuses(page)
    assert len(drawn) > 10 and drawn == {sid: expected.get(sid, "absent") for sid in drawn}
    assert "running" in expected.values() or "scheduled" in expected.values()

    # a step read from the keyframe: its input and output come from its own events
    _click_step(page, "s0")
    output = next(e.output for e in events if e.kind == "step_succeeded" and e.step_id == "s0")
    expect(page.locator('#detail [data-field="output"]')).to_have_text(str(output))
    expect(page.locator('#detail [data-field="args"]')).to_contain_text('"expression": "1+1"')

    page.locator("#scrubber").fill("3")  # back near the start
    expect(label).to_contain_text(f"event 4/{n}")
    expect(page.locator('#detail [data-field="status"]')).to_have_text("scheduled")
    page.keyboard.press("End")
    expect(label).to_contain_text(f"event {n}/{n}")
    expect(page.locator('#detail [data-field="output"]')).to_have_text(str(output))
    held = page.evaluate("() => document.querySelector('#scrubber').max")
    assert held == str(n - 1)


def test_the_timeline_reads_its_scroll_box_only_once_it_scrolled_or_resized(
    web: Browser,
) -> None:
    trace = big_trace("gantt-rows", 300)
    web.server.call(lambda: append_all(web.server.store, trace.events))
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/gantt-rows")
    page.wait_for_selector("body[data-ready]")
    frame = "() => new Promise((r) => requestAnimationFrame(() => r(true)))"
    page.wait_for_function(frame)
    # count the reads of the timeline's scroll box (each lays the page out once the
    # graph was drawn in the same frame)
    page.eval_on_selector("#gantt", """g => {
        window.__ganttReads = 0;
        for (const name of ['scrollTop', 'clientHeight', 'clientWidth']) {
            const d = Object.getOwnPropertyDescriptor(Element.prototype, name);
            Object.defineProperty(g, name, { configurable: true,
                get() { window.__ganttReads++; return d.get.call(this); },
                set(v) { d.set.call(this, v); } });
        }
    }""")
    label = page.locator("#replay-label")
    for at in (500, 700, 600):  # three moves, each drawn (with rows enough to scroll)
        page.locator("#scrubber").fill(str(at))
        expect(label).to_contain_text(f"event {at + 1}/")
    page.wait_for_function(frame)
    assert page.evaluate("() => window.__ganttReads") == 0
    page.eval_on_selector("#gantt", "g => { g.scrollTop = g.scrollHeight; }")
    rows = int(page.eval_on_selector("#gantt svg", "s => s.dataset.rows"))
    assert rows > 100
    # drawn where it was scrolled to: down to the last row (20 px each)
    expect(page.locator("#gantt [data-row]").last).to_have_attribute(
        "transform", f"translate(0,{(rows - 1) * 20})")
    assert page.evaluate("() => window.__ganttReads") > 0
