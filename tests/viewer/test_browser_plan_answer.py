"""The run page names who decided a plan's round: a direct answer (``direct_answer``:
the plan named its answer, so no joiner was called) reads "plan's answer", as
`ponder show` says; it read as the joiner's Finish. A run recorded before the plan
step's ``meta.decisions[].by`` was written still reads so (its ``plan_decision`` event,
which never says, tells a direct answer by its reason and missing joiner output)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from viewer_server import Browser
from viewer_traces import append_all

from orchestrator.runtime import events as ev
from orchestrator.store import SqlStore, StoredEvent
from orchestrator.viewer._replay import DECISIONS, ReplayFold
from tests.orchestrator.cli.test_json_errors import ponder

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
FLOW = str(ROOT / "examples/planners/direct_answer.yaml")
SIM = str(ROOT / "examples/planners/direct_answer.sim.yaml")
# the sim's second question: a look-up fails, so the joiner decides
JOINED = "question=What is the population of Paris plus the population of Oslo?"
KEYFRAME_CHECK = (Path(__file__).parent / "js" / "keyframe_check.js").read_text()


def _recorded(tmp: Path, *inputs: str) -> list[StoredEvent]:
    """The events of a real run of the direct_answer example (simulated backend)."""
    db = tmp / "trace.db"
    ran = ponder("run", FLOW, "--model", f"default={SIM}", "--db", f"sqlite:///{db}",
                 "--json", *inputs)
    assert ran.exit_code == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]

    async def read() -> list[StoredEvent]:
        store = SqlStore(str(db))
        await store.open()
        try:
            return list(await store.events(run_id))
        finally:
            await store.close()

    return asyncio.run(read())


def _as(run_id: str, events: list[StoredEvent], *, old: bool = False,
        reason: str | None = None) -> list[StoredEvent]:
    """The events as run ``run_id``; ``old``: as recorded before ``by`` was; ``reason``:
    the decision's reason (the metadata's ``by`` is what says who decided)."""
    out = []
    for e in events:
        update: dict[str, Any] = {"run_id": run_id}
        if reason is not None and isinstance(e, ev.PlanDecision):
            update["reason"] = reason
        if old and isinstance(e, ev.StepSucceeded) and "decisions" in e.meta:
            update["meta"] = {**e.meta, "decisions": [
                {k: v for k, v in d.items() if k != "by"} for d in e.meta["decisions"]]}
        out.append(e.model_copy(update=update))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[StoredEvent]]:
    direct = _recorded(tmp_path_factory.mktemp("direct"))
    joined = _recorded(tmp_path_factory.mktemp("joined"), "-i", JOINED)
    return {"direct-answer": _as("direct-answer", direct),
            "direct-answer-old": _as("direct-answer-old", direct, old=True),
            "direct-answer-reworded": _as("direct-answer-reworded", direct,
                                          reason="the plan's $4"),
            "joined-answer": _as("joined-answer", joined)}


def _decisions_by(events: list[StoredEvent]) -> list[str]:
    fold = ReplayFold()
    for e in events:
        fold.add(e)
    step = json.loads(fold.snapshot().steps[0])  # the plan step, the workflow's only
    assert step[0] == "answer"
    return [fold.strings[d[3]] for d in step[DECISIONS]]


def test_the_server_s_keyframes_say_who_decided(runs: dict[str, list[StoredEvent]]) -> None:
    assert _decisions_by(runs["direct-answer"]) == ["plan"]
    assert _decisions_by(runs["direct-answer-old"]) == ["plan"]
    assert _decisions_by(runs["direct-answer-reworded"]) == ["plan"]  # its metadata's
    assert _decisions_by(runs["joined-answer"]) == ["joiner"]


@pytest.mark.parametrize("run_id", ["direct-answer", "direct-answer-old",
                                    "direct-answer-reworded"])
def test_a_direct_answer_reads_as_the_plan_s(web: Browser, runs: dict[str, list[StoredEvent]],
                                             run_id: str) -> None:
    web.server.call(lambda: append_all(web.server.store, runs[run_id]))
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/{run_id}")
    page.wait_for_selector("body[data-ready]")
    page.locator('#dag g.step[data-step-id="answer"]').dispatch_event("click")
    detail = page.locator("#detail")
    rows = detail.locator('[data-field="decisions"] tbody tr[data-by]')
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-by", "plan")
    expect(rows.first).to_contain_text("plan's answer")
    expect(detail).not_to_contain_text("Joiner decisions")
    expect(detail.locator('[data-field="decisions"]')).to_contain_text("8728859")
    expect(page.locator("#gantt path.decision title")).to_contain_text(
        "round 1: plan's answer: finish (the plan")
    if run_id != "direct-answer-reworded":
        # halfway through the run (before the step's metadata) it reads so too
        decided = next(i for i, e in enumerate(runs[run_id]) if e.kind == "plan_decision")
        page.locator("#scrubber").fill(str(decided))
        expect(rows.first).to_have_attribute("data-by", "plan")
    out = page.evaluate(KEYFRAME_CHECK, run_id)
    assert out["problems"] == []


def test_a_joiner_s_decision_reads_as_the_joiner_s(web: Browser,
                                                   runs: dict[str, list[StoredEvent]]) -> None:
    web.server.call(lambda: append_all(web.server.store, runs["joined-answer"]))
    page = web.new_page()
    page.goto(f"{web.server.url}/runs/joined-answer")
    page.wait_for_selector("body[data-ready]")
    page.locator('#dag g.step[data-step-id="answer"]').dispatch_event("click")
    detail = page.locator("#detail")
    expect(detail).to_contain_text("Joiner decisions")
    rows = detail.locator('[data-field="decisions"] tbody tr[data-by]')
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-by", "joiner")
    expect(page.locator("#gantt path.decision title")).to_have_text("round 1: joiner: finish")
    out = page.evaluate(KEYFRAME_CHECK, "joined-answer")
    assert out["problems"] == []
