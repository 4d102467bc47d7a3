"""Several `ponder` processes share one trace store (SQLite file, PostgreSQL server).

Real child processes, started at once, each run a workflow against the same store URL;
afterwards every run is whole: all its events, numbered without gaps, folded to the same
output as a run alone. A run killed in one process is resumed by another.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tests.store.conftest import PgServer

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL"), pytest.mark.slow]

N_PROCESSES = 4

WORKFLOW: dict[str, Any] = {
    "name": "shared",
    "inputs": {"n": {"type": "integer", "default": 3}},
    "models": {"default": {"backend": "simulated",
                           "options": {"decode_s_per_token": 0.002, "seed": 3}}},
    "steps": [
        {"id": "a", "kind": "tool", "tool": "calc", "args": {"expression": "${inputs.n} * 2"}},
        *({"id": f"p{i}", "kind": "tool", "tool": "sleep", "args": {"seconds": 0.05 * i},
           "after": ["a"]} for i in range(1, 5)),
        {"id": "ask", "kind": "llm", "max_tokens": 16,
         "prompt": "Explain the number {{ steps.a.output }}"},
        {"id": "b", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.a.output} + 1"}, "after": ["p1", "p2", "p3", "p4"]},
        {"id": "wait", "kind": "tool", "tool": "sleep", "args": {"seconds": 0.3},
         "after": ["b"]},
        {"id": "c", "kind": "tool", "tool": "calc",
         "args": {"expression": "${steps.b.output} * 10"}, "after": ["wait"]},
    ],
    "outputs": {"c": "${steps.c.output}", "ask": "${steps.ask.output}"},
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    server.require()
    return str(request.getfixturevalue("pg_url"))


def ponder(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def last_json(text: str) -> Any:
    return json.loads(text.strip().splitlines()[-1])


def check_whole(url: str, run_id: str) -> list[dict[str, Any]]:
    code, out, err = finish(ponder("export", run_id, "--db", url))
    assert code == 0, err
    events: list[dict[str, Any]] = json.loads(out)["events"]
    assert [e["seq"] for e in events] == list(range(len(events))), "gaps or repeats"
    done = Counter(e["step_id"] for e in events if e["kind"] == "step_succeeded")
    assert set(done) == {s["id"] for s in WORKFLOW["steps"]}
    assert max(done.values()) == 1, f"a step ran twice: {done}"
    return events


GATE_MODULE = """\
import anyio
from pathlib import Path


async def gate(path: str) -> str:
    # a test's barrier: the run waits here until the test creates the file
    while not Path(path).exists():
        await anyio.sleep(0.01)
    return "open"
"""


def gated_workflow(tmp_path: Path) -> tuple[Path, Path]:
    """WORKFLOW with its 0.3 s wait replaced by a gate that holds the run, after b and
    before c, until the returned file exists (a run killed there is killed mid-run
    however slow the machine is); the gate is open."""
    (tmp_path / "gate_tool.py").write_text(GATE_MODULE)
    gate = tmp_path / "gate.open"
    gate.touch()
    steps = [{"id": "wait", "kind": "tool", "tool": "gate", "args": {"path": str(gate)},
              "after": ["b"]} if s["id"] == "wait" else s for s in WORKFLOW["steps"]]
    wf = tmp_path / "shared.yaml"
    wf.write_text(yaml.safe_dump({**WORKFLOW, "tools": {"gate": "gate_tool:gate"},
                                  "steps": steps}, sort_keys=False))
    return wf, gate


def wait_for_success_of(step: str, url: str, *, other_than: str,
                        proc: subprocess.Popen[str]) -> str:
    """The id of the run (not ``other_than``) whose ``step`` has succeeded, read straight
    from the store's table while ``proc`` runs it."""
    engine = sa.create_engine(url)
    query = sa.text("SELECT run_id FROM events WHERE kind = 'step_succeeded' "
                    "AND step_id = :step AND run_id != :other")
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            try:
                with engine.connect() as conn:
                    row = conn.execute(query, {"step": step, "other": other_than}).first()
            except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # no table yet
                row = None
            if row is not None:
                return str(row[0])
            time.sleep(0.01)
    finally:
        engine.dispose()
    raise AssertionError(f"step {step!r} never succeeded")


def test_processes_running_at_once_each_keep_a_whole_run(tmp_path: Path, store_url: str) -> None:
    wf = tmp_path / "shared.yaml"
    wf.write_text(yaml.safe_dump(WORKFLOW, sort_keys=False))
    procs = [ponder("run", str(wf), "--db", store_url, "--json", "--input", f"n={i}")
             for i in range(N_PROCESSES)]
    docs = []
    for proc in procs:
        code, out, err = finish(proc)
        assert code == 0, err
        docs.append(last_json(out))
    assert [d["output"]["c"] for d in docs] == [(2 * i + 1) * 10 for i in range(N_PROCESSES)]
    # the runs overlapped in time (else this would test nothing about sharing)
    spans = sorted((d["steps"][0]["started_at"], max(s["finished_at"] for s in d["steps"]))
                   for d in docs)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))

    code, out, err = finish(ponder("runs", "--db", store_url, "--json"))
    assert code == 0, err
    listed = {r["id"]: r for r in json.loads(out)}
    assert set(listed) == {d["run_id"] for d in docs}
    assert {r["status"] for r in listed.values()} == {"succeeded"}
    for doc in docs:
        check_whole(store_url, doc["run_id"])


def test_a_run_killed_in_one_process_is_resumed_by_another(tmp_path: Path,
                                                          store_url: str) -> None:
    wf, gate = gated_workflow(tmp_path)
    code, out, err = finish(ponder("run", str(wf), "--db", store_url, "--json"))
    assert code == 0, err
    expected, first_id = last_json(out)["output"], last_json(out)["run_id"]

    gate.unlink()
    victim = ponder("run", str(wf), "--db", store_url, "--json")
    # kill it at the closed gate: after b succeeded, before c ran (a 0.3 s sleep there
    # once let a loaded machine see b only after the run had ended)
    run_id = wait_for_success_of("b", store_url, other_than=first_id, proc=victim)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    gate.touch()
    code, out, err = finish(ponder("resume", run_id, "--db", store_url, "--json"))
    assert code == 0, err
    assert "already finished" not in err  # it was resumed, not found done
    doc = last_json(out)
    assert doc["run_id"] == run_id and doc["status"] == "succeeded"
    assert doc["output"] == expected
    check_whole(store_url, run_id)


def test_two_processes_resuming_one_run_at_once_cannot_both_write_it(tmp_path: Path,
                                                                     store_url: str) -> None:
    wf, gate = gated_workflow(tmp_path)
    gate.unlink()  # the run stops there, however slowly it is seen to reach a
    victim = ponder("run", str(wf), "--db", store_url, "--json")
    run_id = wait_for_success_of("a", store_url, other_than="", proc=victim)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    gate.touch()

    results = [finish(p) for p in [ponder("resume", run_id, "--db", store_url, "--json")
                                   for _ in range(2)]]
    codes = sorted(code for code, _, _ in results)
    if codes == [0, 0]:  # the second started after the first had finished the run
        assert any("already finished" in out + err for _, out, err in results)
    else:
        assert codes == [0, 1], results
        (loser,) = [err for code, _, err in results if code == 1]
        # its first batch clashed with the other's ("is already stored" before 30c7f9e),
        # or it found the other's writer alive
        assert ("is being resumed by" in loser or "is still running" in loser) \
            and "Traceback" not in loser, loser
    (winner,) = [last_json(out) for code, out, _ in results
                 if code == 0 and "already finished" not in out][:1]
    assert winner["status"] == "succeeded" and winner["output"]["c"] == 70
    check_whole(store_url, run_id)
