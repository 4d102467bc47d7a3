"""``ponder resume`` runs tool steps on the executor ``ponder run --tool-executor`` gave
the run (recorded in its run_started), or on the one its own ``--tool-executor`` names,
checked in ``ponder run``'s words; it resumed a run started on ``ray-tool`` on the
default executor and had no option to say otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from orchestrator.store import open_store
from tests.orchestrator.cli.test_json_errors import QUICKSTART, error_of, ponder
from tests.orchestrator.runtime.cut_runs import cut_two

INSTALLED = "installed for tool steps: ray-tool, tool"


def _seed(tmp_path: Path, db: str, tool_executor: str | None) -> str:
    """A run of cut_runs.TWO cut while `b` ran, as recorded by a `ponder run` with
    ``--tool-executor tool_executor``, stored in ``db``: its id."""

    async def seed() -> str:
        run_id, kept = await cut_two(tmp_path, "step_started", "b")
        kept[0] = kept[0].model_copy(update={"tool_executor": tool_executor})
        async with await open_store(db) as store:
            await store.append(kept)
        return run_id

    return anyio.run(seed)


def _tool_executors(db: str, run_id: str) -> list[Any]:
    async def read() -> list[Any]:
        async with await open_store(db) as store:
            return [e.tool_executor
                    for e in await store.events(run_id, kinds=("run_started",))]

    return anyio.run(read)


def test_run_records_its_tool_executor(db: str) -> None:
    result = ponder("run", QUICKSTART, "--backend", "simulated", "--db", db, "--json",
                    "--tool-executor", "tool")
    assert result.exit_code == 0, result.stderr
    assert _tool_executors(db, json.loads(result.stdout)["run_id"]) == ["tool"]


def test_resume_runs_tool_steps_on_the_recorded_executor(tmp_path: Path, db: str) -> None:
    run_id = _seed(tmp_path, db, "tool")
    result = ponder("resume", run_id, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output"] == {"b": 3}
    assert _tool_executors(db, run_id) == ["tool", "tool"]


def test_a_recorded_executor_not_installed_is_refused_naming_it(tmp_path: Path,
                                                                db: str) -> None:
    run_id = _seed(tmp_path, db, "gone-tool")
    error = error_of(ponder("resume", run_id, "--db", db, "--json"), "config")
    assert error["message"] == ("the run's recorded tool_executor='gone-tool': no such "
                                f"executor; {INSTALLED}")
    assert _tool_executors(db, run_id) == ["gone-tool"]  # nothing recorded
    # --tool-executor resumes it elsewhere
    result = ponder("resume", run_id, "--db", db, "--json", "--tool-executor", "tool")
    assert result.exit_code == 0, result.stderr
    assert _tool_executors(db, run_id) == ["gone-tool", "tool"]


def test_resume_checks_its_tool_executor_as_run_does(tmp_path: Path, db: str) -> None:
    run_id = _seed(tmp_path, db, None)
    for given, problem in [("nope", f"no such executor; {INSTALLED}"),
                           ("llm", f"that executor runs llm steps, not tool steps; "
                                   f"{INSTALLED}")]:
        error = error_of(ponder("resume", run_id, "--db", db, "--json",
                                "--tool-executor", given), "config")
        assert error["message"] == f"--tool-executor {given!r}: {problem}"
    assert _tool_executors(db, run_id) == [None]


def test_an_old_trace_resumes_on_the_default_executor(tmp_path: Path, db: str) -> None:
    run_id = _seed(tmp_path, db, None)
    result = ponder("resume", run_id, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    assert _tool_executors(db, run_id) == [None, None]
