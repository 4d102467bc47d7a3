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
import shutil
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


def kill_run(wf: Path, db: Path, kill_after: int, pause_s: float = 0.0, **popen: Any) -> str:
    """`ponder run WF --db sqlite:///DB --json` in a child process, SIGKILLed once its trace
    holds ``kill_after`` events (then ``pause_s`` later) or it has ended: the --db URL."""
    url = f"sqlite:///{db}"
    child = subprocess.Popen([*ponder_command(), "run", str(wf), "--db", url, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    deadline = time.monotonic() + 60
    while event_count(db) < kill_after and child.poll() is None:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.002)
    if pause_s:
        time.sleep(pause_s)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    return url


def oslo_workflow(tmp_path: Path, decode_s_per_token: float) -> Path:
    """The LLMCompiler example (its tools and corpus copied into ``tmp_path``) asked about
    Paris and Oslo: its second look-up fails and the joiner answers anyway. The simulated
    model decodes a token in ``decode_s_per_token``."""
    examples = Path(__file__).resolve().parents[2] / "examples" / "planners"
    for name in ("tools.py", "corpus"):
        copy = shutil.copytree if (examples / name).is_dir() else shutil.copy
        copy(examples / name, tmp_path / name)
    doc = yaml.safe_load((examples / "direct_answer.yaml").read_text())
    model = yaml.safe_load((examples / "direct_answer.sim.yaml").read_text())
    model["options"]["decode_s_per_token"] = decode_s_per_token
    doc["models"] = {"default": model}
    doc["inputs"]["question"]["default"] = (
        "What is the population of Paris plus the population of Oslo?")
    wf = tmp_path / "oslo.yaml"
    wf.write_text(yaml.safe_dump(doc, sort_keys=False))
    return wf


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
        url = kill_run(wf, tmp_path / f"trial{k}.db", kill_after, pause_s=rng.uniform(0, 0.01),
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})

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
    wf = oslo_workflow(tmp_path, decode_s_per_token=0.02)  # about a second of streaming
    baseline = cli("run", str(wf), "--db", f"sqlite:///{tmp_path / 'base.db'}", "--json")
    assert baseline.exit_code == 0, baseline.output
    expected = json.loads(baseline.stdout.strip().splitlines()[-1])
    assert expected["output"] == {"answer": "unknown: Oslo is not in the corpus"}
    total_events = event_count(tmp_path / "base.db")
    resumed_runs = 0
    for k, kill_after in enumerate((2, total_events // 2, total_events - 2)):
        url = kill_run(wf, tmp_path / f"trial{k}.db", kill_after, cwd=tmp_path)
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


MARKS = '''\
"""A tool that notes each of its calls in a file: the test counts executions."""


def mark(name: str, path: str) -> str:
    """Append ``name`` to the file at ``path``."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(name + "\\n")
    return name
'''

SUB: dict[str, Any] = {
    "name": "sub",
    "inputs": {"log": {"type": "string"}, "n": {"type": "integer", "default": 0}},
    "tools": {"mark": "chaos_marks:mark"},
    "steps": [
        {"id": "c1", "kind": "tool", "tool": "mark", "args": {"name": "c1", "path": "${inputs.log}"}},
        {"id": "c2", "kind": "tool", "tool": "mark", "args": {"name": "c2", "path": "${inputs.log}"},
         "after": ["c1"]},
        # the kill lands here
        {"id": "hold", "kind": "tool", "tool": "sleep", "args": {"seconds": 0.5}, "after": ["c2"]},
        {"id": "c3", "kind": "tool", "tool": "mark", "args": {"name": "c3", "path": "${inputs.log}"},
         "after": ["hold"]},
    ],
    "outputs": {"done": "${steps.c3.output}", "n": "${inputs.n}"},
}

PARENTS: dict[str, dict[str, Any]] = {
    "workflow": {
        "name": "calls_sub",
        "inputs": {"log": {"type": "string"}},
        "tools": {"mark": "chaos_marks:mark"},
        "steps": [
            {"id": "a", "kind": "tool", "tool": "mark",
             "args": {"name": "a", "path": "${inputs.log}"}},
            {"id": "w", "kind": "workflow", "workflow": "sub.yaml",
             "inputs": {"log": "${inputs.log}"}, "after": ["a"]},
            {"id": "z", "kind": "tool", "tool": "mark",
             "args": {"name": "z", "path": "${inputs.log}"}, "after": ["w"]},
        ],
        "outputs": {"w": "${steps.w.output}", "z": "${steps.z.output}"},
    },
    "spawn": {
        "name": "spawns_sub",
        "inputs": {"log": {"type": "string"}},
        "tools": {"mark": "chaos_marks:mark"},
        "steps": [
            {"id": "s", "kind": "spawn", "messages": [1, 2], "workflow": "sub.yaml",
             "inputs": {"log": "${inputs.log}", "n": "${message}"}},
            {"id": "z", "kind": "tool", "tool": "mark",
             "args": {"name": "z", "path": "${inputs.log}"}, "after": ["s"]},
        ],
        "outputs": {"s": "${steps.s.output}", "z": "${steps.z.output}"},
    },
}


def child_steps_done(db: Path, step_id: str) -> int:
    """How many child runs have recorded ``step_id`` as succeeded."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(
                "SELECT count(*) FROM events JOIN runs ON runs.id = events.run_id "
                "WHERE events.kind = 'step_succeeded' AND events.step_id = ? "
                "AND runs.parent_run_id IS NOT NULL", (step_id,)).fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("parent", sorted(PARENTS))
def test_a_killed_sub_workflow_goes_on_under_its_own_id(tmp_path: Path, parent: str) -> None:
    """Killed while its sub-workflows' runs (a `workflow` step; a spawn's children) are
    past their first steps: resume continues those child runs, under their own ids,
    without executing their finished steps again, and leaves nothing interrupted."""
    (tmp_path / "chaos_marks.py").write_text(MARKS)
    (tmp_path / "sub.yaml").write_text(yaml.safe_dump(SUB, sort_keys=False))
    wf = tmp_path / "main.yaml"
    wf.write_text(yaml.safe_dump(PARENTS[parent], sort_keys=False))
    log = tmp_path / "calls.log"
    db = tmp_path / "trace.db"
    url = f"sqlite:///{db}"
    n_children = 2 if parent == "spawn" else 1

    proc = subprocess.Popen([*ponder_command(), "run", str(wf), "--db", url, "--json",
                             "--input", f"log={log}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while child_steps_done(db, "c2") < n_children and proc.poll() is None:
        assert time.monotonic() < deadline, "the children never got past c2"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()

    before = json.loads(cli("runs", "--db", url, "--json").stdout)
    assert [r["interrupted"] for r in before] == [True] * (n_children + 1)
    (top,) = [r for r in before if r["parent_run_id"] is None]
    children = {r["id"] for r in before if r["parent_run_id"] == top["id"]}
    assert len(children) == n_children
    calls_before = Counter(log.read_text().split())
    assert calls_before == Counter({"a": 1} if parent == "workflow" else {}) + Counter(
        {"c1": n_children, "c2": n_children})

    resumed = cli("resume", top["id"], "--db", url, "--json")
    assert resumed.exit_code == 0, resumed.output
    doc = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert doc["status"] == "succeeded", doc["error"]
    assert doc["output"]["z"] == "z"

    calls = Counter(log.read_text().split())
    assert calls == calls_before + Counter({"c3": n_children, "z": 1}), (
        "a step that had finished ran again")
    after = json.loads(cli("runs", "--db", url, "--json").stdout)
    assert {r["id"] for r in after} == {top["id"]} | children, "a new child run was started"
    assert [(r["status"], r["interrupted"]) for r in after] == [("succeeded", False)] * len(after)
    assert "interrupted" not in cli("runs", "--db", url).output
    for child in children:
        events = json.loads(cli("export", child, "--db", url).stdout)["events"]
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(len(events)))
        done = Counter(e["step_id"] for e in events if e["kind"] == "step_succeeded")
        assert done == Counter({"c1": 1, "c2": 1, "hold": 1, "c3": 1})
        starts = [e for e in events if e["kind"] == "run_started"]
        assert [s["resumed"] for s in starts] == [False, True]
        assert all(s["parent_run_id"] == top["id"] for s in starts)
