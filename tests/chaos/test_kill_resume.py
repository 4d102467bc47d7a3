"""SIGKILL `ponder run` at random moments, then `ponder resume`: the run always completes
with the output of an uninterrupted run, and no step that had succeeded runs again.

The run is a real `ponder run --db sqlite:///... --json` child process; it is killed once
its trace holds a randomly chosen number of events (so kills land anywhere from the first
event to the last), then resumed with the public CLI in this process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("orchestrator.store")
from typer.testing import CliRunner

from orchestrator.cli import app

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"),
              pytest.mark.slow]  # three `ponder run` processes: ~10 s on 2 cores

WORKFLOW: dict[str, Any] = {
    "name": "killme",
    "inputs": {"n": {"type": "integer", "default": 3}},
    "models": {"default": {"backend": "simulated",
                           "options": {"decode_s_per_token": 0.004, "seed": 7}}},
    "steps": [
        {"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "${inputs.n} * 2"}},
        {"id": "wait1", "kind": "tool", "tool": "sleep", "args": {"seconds": 0.08},
         "after": ["a"]},
        {"id": "b", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.a.output} + 1"}, "after": ["wait1"]},
        *({"id": f"p{i}", "kind": "tool", "tool": "sleep", "args": {"seconds": 0.05 * i},
           "after": ["b"]} for i in range(1, 4)),
        {"id": "ask", "kind": "llm", "max_tokens": 20,
         "prompt": "Explain the number {{ steps.b.output }}"},
        {"id": "c", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.b.output} * 10"}, "after": ["p1", "p2", "p3"]},
        {"id": "wait2", "kind": "tool", "tool": "sleep", "args": {"seconds": 0.08},
         "after": ["c"]},
        {"id": "first_word", "kind": "tool", "tool": "extract",
         "args": {"text": "${steps.ask.output}", "pattern": "\\w+"}, "after": ["wait2"]},
    ],
    "outputs": {"c": "${steps.c.output}", "ask": "${steps.ask.output}",
                "first_word": "${steps.first_word.output}"},
}


def cli(*args: str) -> Any:
    """`ponder ARGS...`, in this process."""
    return CliRunner().invoke(app, list(args))


def event_count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return 0


def ponder_command() -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli"]


def test_sigkill_then_resume_always_completes_with_the_same_output(tmp_path: Path) -> None:
    wf = tmp_path / "killme.yaml"
    wf.write_text(yaml.safe_dump(WORKFLOW, sort_keys=False))
    baseline = cli("run", str(wf), "--db", f"sqlite:///{tmp_path / 'base.db'}", "--json")
    assert baseline.exit_code == 0, baseline.output
    expected = json.loads(baseline.stdout.strip().splitlines()[-1])
    assert expected["status"] == "succeeded"
    total_events = event_count(tmp_path / "base.db")
    assert total_events > 20

    rng = random.Random(20)
    # one kill in each third of the run (each a random event count within it)
    third = total_events // 3
    trials = [rng.randint(1, third), rng.randint(third + 1, 2 * third),
              rng.randint(2 * third + 1, total_events - 2)]
    for k, kill_after in enumerate(trials):
        db = tmp_path / f"trial{k}.db"
        url = f"sqlite:///{db}"
        child = subprocess.Popen([*ponder_command(), "run", str(wf), "--db", url, "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        while event_count(db) < kill_after and child.poll() is None:
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.01))
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)

        listed = cli("runs", "--db", url, "--json")
        assert listed.exit_code == 0, listed.output
        (run,) = json.loads(listed.stdout)
        if run["status"] == "succeeded":  # it finished before the kill landed
            shown = cli("resume", run["id"], "--db", url, "--json")
            assert shown.exit_code == 0 and "already finished" in shown.output
            continue
        resumed = cli("resume", run["id"], "--db", url, "--json")
        assert resumed.exit_code == 0, f"trial {k} (kill after {kill_after}): {resumed.output}"
        doc = json.loads(resumed.stdout.strip().splitlines()[-1])
        assert doc["run_id"] == run["id"]
        assert doc["status"] == "succeeded", doc["error"]
        assert doc["output"] == expected["output"], f"trial {k}"

        exported = cli("export", run["id"], "--db", url)
        assert exported.exit_code == 0, exported.output
        events = json.loads(exported.stdout)["events"]
        done = Counter(e["step_id"] for e in events if e["kind"] == "step_succeeded")
        assert set(done) == {s["id"] for s in WORKFLOW["steps"]}
        assert max(done.values()) == 1, f"a completed step ran again: {done}"
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(set(seqs)), "sequence numbers repeat or go back"


def test_a_killed_plan_run_resumes_to_the_same_answer(tmp_path: Path) -> None:
    """The LLMCompiler example whose second look-up fails (the joiner answers anyway),
    killed before, during and after its plan streams, resumes to the same answer."""
    import shutil

    examples = Path(__file__).resolve().parents[2] / "examples" / "planners"
    for name in ("tools.py", "corpus"):
        copy = shutil.copytree if (examples / name).is_dir() else shutil.copy
        copy(examples / name, tmp_path / name)
    doc = yaml.safe_load((examples / "direct_answer.yaml").read_text())
    model = yaml.safe_load((examples / "direct_answer.sim.yaml").read_text())
    model["options"]["decode_s_per_token"] = 0.02  # about a second of streaming
    doc["models"] = {"default": model}
    doc["inputs"]["question"]["default"] = (
        "What is the population of Paris plus the population of Oslo?")
    wf = tmp_path / "oslo.yaml"
    wf.write_text(yaml.safe_dump(doc, sort_keys=False))

    baseline = cli("run", str(wf), "--db", f"sqlite:///{tmp_path / 'base.db'}", "--json")
    assert baseline.exit_code == 0, baseline.output
    expected = json.loads(baseline.stdout.strip().splitlines()[-1])
    assert expected["output"] == {"answer": "unknown: Oslo is not in the corpus"}
    total_events = event_count(tmp_path / "base.db")
    resumed_runs = 0
    for k, kill_after in enumerate((2, total_events // 2, total_events - 2)):
        db = tmp_path / f"trial{k}.db"
        url = f"sqlite:///{db}"
        child = subprocess.Popen([*ponder_command(), "run", str(wf), "--db", url, "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while event_count(db) < kill_after and child.poll() is None:
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        (run,) = json.loads(cli("runs", "--db", url, "--json").stdout)
        if run["status"] == "succeeded":
            continue
        resumed = cli("resume", run["id"], "--db", url, "--json")
        assert resumed.exit_code == 0, f"kill after {kill_after}: {resumed.output}"
        doc_out = json.loads(resumed.stdout.strip().splitlines()[-1])
        assert doc_out["status"] == "succeeded", doc_out["error"]
        assert doc_out["output"] == expected["output"], f"kill after {kill_after}"
        resumed_runs += 1
    assert resumed_runs >= 2, "the kills landed after the runs had finished"
