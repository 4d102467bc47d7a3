"""A short run killed mid-plan and not resumed (its writer gone), folded whole by the run
page: the tokens its plan step's cut attempt's recorded calls paid count on that step and
in the page's total, as `ponder show` counts them, at the run's last event; the events
before it show the figures as they were then. On every store backend, the page's
figures as the summary's `cut` (which the page adds)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import expect
from test_run_tokens import _killed, _pair, _traces
from viewer_server import Api, Browser
from viewer_traces import append_all

from orchestrator.store import fold_events

API = "/api/v1"


def _killed_run() -> list[Any]:
    events = _traces()["resumed"]
    second = [i for i, e in enumerate(events) if e.kind == "run_started"][1]
    kept = _killed(events[:second])
    cut = [e for e in kept if e.kind == "plan_call" and e.step_id == "p"]
    assert cut and any(_pair(e.usage) != (0, 0) for e in cut)
    return kept


def test_an_interrupted_runs_summary_says_its_cut_calls_tokens(api: Api) -> None:
    kept = _killed_run()
    api.call(lambda: api.store.append(kept))
    shown = fold_events(kept)
    for steps in ("false", "true"):
        head = api.client.get(f"{API}/runs/{kept[0].run_id}", params={"steps": steps}).json()
        assert head["interrupted"] is True and head["last_seq"] == kept[-1].seq
        assert head["cut"] == {"p": list(_pair({s.id: s for s in shown.steps}["p"]))}


def test_a_finished_runs_summary_has_no_cut_calls(api: Api) -> None:
    events = _traces()["plan"]
    api.call(lambda: api.store.append(events))
    head = api.client.get(f"{API}/runs/{events[0].run_id}", params={"steps": "false"}).json()
    assert head["cut"] == {}


@pytest.mark.browser
def test_a_short_interrupted_plan_runs_page_counts_its_cut_calls(web_store: Browser) -> None:
    with ThreadPoolExecutor(1) as pool:  # made outside Playwright's event loop
        kept = pool.submit(_killed_run).result()
    web_store.server.call(lambda: append_all(web_store.server.store, kept))
    shown = fold_events(kept)
    p, c = _pair(shown)
    step = {s.id: _pair(s) for s in shown.steps}["p"]
    assert step != (0, 0)
    page = web_store.new_page()
    page.goto(f"{web_store.server.url}/runs/{kept[0].run_id}")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#run-status")).to_have_text("interrupted")
    expect(page.locator("#fact-tokens")).to_contain_text(f"({p} + {c})")
    page.evaluate("""(id) => [...document.querySelectorAll('#dag g.step')]
        .find((g) => g.getAttribute('data-step-id') === id)
        .dispatchEvent(new MouseEvent('click', {bubbles: true}))""", "p")
    detail = page.locator("#detail")
    expect(detail.locator('[data-field="id"]')).to_have_text("p")
    expect(detail).to_contain_text(f"{step[0]} prompt + {step[1]} completion")
    # one event back: the step as the page's fold has it then (its attempt open, no
    # calls counted), the total still the run's as it stands
    n = len(kept)
    page.locator("#scrubber").fill(str(n - 2))
    expect(page.locator("#replay-label")).to_have_text(re.compile(rf"^event {n - 1}/{n} "))
    expect(detail).not_to_contain_text(f"{step[0]} prompt + {step[1]} completion")
    page.locator("#scrubber").fill(str(n - 1))
    expect(page.locator("#replay-label")).to_have_text(re.compile(rf"^event {n}/{n} "))
    expect(detail).to_contain_text(f"{step[0]} prompt + {step[1]} completion")
    expect(page.locator("#fact-tokens")).to_contain_text(f"({p} + {c})")


FIGURES = """async (runId) => {
  const { Trace } = await import('/static/js/fold.js');
  const api = `/api/v1/runs/${encodeURIComponent(runId)}`;
  const events = (await (await fetch(`${api}/events`)).json()).events;
  const kf = (await (await fetch(`${api}/keyframe`)).json()).keyframe;
  const head = await (await fetch(`${api}?steps=false`)).json();
  const figures = (trace) => {
    trace.setCut(head.last_seq, head.cut);
    const tip = trace.tip, [p, c] = tip.tokens(), [cp, cc] = trace.cutTokens(tip);
    const at = trace.withCut(trace.at(trace.count - 1));
    return { total: [p + cp, c + cc],
             steps: Object.fromEntries([...at.steps.values()].map((s) => [s.id, [s.prompt, s.completion]])) };
  };
  const whole = new Trace(head.graph);  // a short run: every event folded here
  whole.append(events);
  const jumped = new Trace(head.graph);  // a long run: from the server's tip keyframe
  jumped.jump(kf, []);
  return { whole: figures(whole), jumped: figures(jumped) };
}"""


@pytest.mark.browser
def test_the_page_counts_the_cut_calls_once_folded_whole_or_from_the_tip_keyframe(
        web_store: Browser) -> None:
    """The server's tip keyframe counts them already: read from it (a long run), the
    page adds nothing; folded from every event (a short run), it adds them: both as
    `ponder show`."""
    with ThreadPoolExecutor(1) as pool:
        kept = pool.submit(_killed_run).result()
    kept = [e.model_copy(update={"run_id": "cut-figures"}) for e in kept]
    web_store.server.call(lambda: append_all(web_store.server.store, kept))
    shown = fold_events(kept)
    want = {"total": list(_pair(shown)),
            "steps": {s.id: list(_pair(s)) for s in shown.steps}}
    page = web_store.new_page()
    page.goto(f"{web_store.server.url}/runs/cut-figures")
    page.wait_for_selector("body[data-ready]")
    got = page.evaluate(FIGURES, "cut-figures")
    for how in ("whole", "jumped"):
        assert got[how]["total"] == want["total"], how
        assert {k: v for k, v in got[how]["steps"].items() if k in want["steps"]} == \
            want["steps"], how
