"""`ponder show` names who decided a plan's round: a direct answer (`direct_answer`: the
plan named its answer, no joiner call) reads "plan's answer", not "joiner", which it read
although no joiner was called."""

from __future__ import annotations

import json
from pathlib import Path

from tests.orchestrator.cli.test_json_errors import ponder

ROOT = Path(__file__).resolve().parents[3]
FLOW = str(ROOT / "examples/planners/direct_answer.yaml")
SIM = str(ROOT / "examples/planners/direct_answer.sim.yaml")


def _shown(tmp_path: Path, *inputs: str) -> str:
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    ran = ponder("run", FLOW, "--model", f"default={SIM}", "--db", db, "--json", *inputs)
    assert ran.exit_code == 0, ran.stderr
    shown = ponder("show", json.loads(ran.stdout)["run_id"], "--db", db)
    assert shown.exit_code == 0, shown.stderr
    return shown.stdout


def test_a_direct_answer_is_the_plans(tmp_path: Path) -> None:
    text = _shown(tmp_path)
    assert "answer: round 1: plan's answer: finish: 8728859" in text, text
    assert "joiner:" not in text


def test_a_joiners_decision_is_the_joiners(tmp_path: Path) -> None:
    # the sim's second question: a look-up fails, so the joiner decides
    text = _shown(tmp_path, "-i", "question=What is the population of Paris plus the "
                                   "population of Oslo?")
    assert "round 1: joiner: finish" in text, text
    assert "plan's answer" not in text
