"""``ponder replay --from`` runs the fork's tool steps on the executor ``ponder run
--tool-executor`` gave the run (recorded in its run_started), or on the one its own
``--tool-executor`` names, checked in ``ponder run``'s words, and records it in the
fork's run_started, as ``ponder resume`` does: it ran them on the default executor and
had no such option. ``--tool-executor`` is checked by the run's own check, whose words
include an executor that does not load (it was an internal error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import QUICKSTART, error_of, ponder
from tests.orchestrator.cli.test_resume_tool_executor import (
    INSTALLED,
    _seed,
    _tool_executors,
)


def _fork(run_id: str, db: str, *args: str) -> str:
    """Fork ``run_id`` from `b`: the fork's run id."""
    result = ponder("replay", run_id, "--db", db, "--json", "--from", "b", *args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output"] == {"b": 3}
    return str(json.loads(result.stdout)["run_id"])


def test_a_fork_runs_on_and_records_the_recorded_executor(tmp_path: Path, db: str) -> None:
    run_id = _seed(tmp_path, db, "tool")
    assert _tool_executors(db, _fork(run_id, db)) == ["tool"]


def test_a_recorded_executor_not_installed_is_refused_naming_it(tmp_path: Path,
                                                                db: str) -> None:
    run_id = _seed(tmp_path, db, "gone-tool")
    error = error_of(ponder("replay", run_id, "--db", db, "--json", "--from", "b"),
                     "config")
    assert error["message"] == ("the run's recorded tool_executor='gone-tool': no such "
                                f"executor; {INSTALLED}")
    # --tool-executor forks it elsewhere, and the fork records that one
    assert _tool_executors(db, _fork(run_id, db, "--tool-executor", "tool")) == ["tool"]


def test_replay_checks_its_tool_executor_as_run_does(tmp_path: Path, db: str) -> None:
    run_id = _seed(tmp_path, db, None)
    for given, problem in [("nope", f"no such executor; {INSTALLED}"),
                           ("llm", f"that executor runs llm steps, not tool steps; "
                                   f"{INSTALLED}")]:
        error = error_of(ponder("replay", run_id, "--db", db, "--json", "--from", "b",
                                "--tool-executor", given), "config")
        assert error["message"] == f"--tool-executor {given!r}: {problem}"
    assert _tool_executors(db, _fork(run_id, db)) == [None]


@pytest.mark.parametrize("command", ["run", "resume", "replay"])
def test_an_executor_that_does_not_load_is_refused_naming_why(
        tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    from executors.engines import ray

    def broken(self: object) -> None:
        raise ImportError("ray is not installed")

    monkeypatch.setattr(ray.RayToolExecutor, "__init__", broken)
    args = {"run": [QUICKSTART, "--backend", "simulated"],
            "resume": [_seed(tmp_path, db, None)],
            "replay": [_seed(tmp_path, db, None), "--from", "b"]}[command]
    error = error_of(ponder(command, *args, "--db", db, "--json",
                            "--tool-executor", "ray-tool"), "config")
    assert error["message"] == ("--tool-executor 'ray-tool': it does not load: ImportError: "
                                "ray is not installed")
