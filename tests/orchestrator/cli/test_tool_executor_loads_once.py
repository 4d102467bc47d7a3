"""The executor ``--tool-executor`` names is made once per command: ``ponder resume`` and
``ponder replay --from`` checked it on a registry of their own, then the run loaded it
again on another (two Ray tool executors, each connecting to the cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from executors.tool import ToolExecutor
from tests.orchestrator.cli.test_json_errors import QUICKSTART, ponder
from tests.orchestrator.cli.test_resume_tool_executor import _seed, _tool_executors


@pytest.mark.parametrize("command", ["run", "resume", "replay"])
def test_the_tool_executor_is_loaded_once(tmp_path: Path, db: str,
                                          monkeypatch: pytest.MonkeyPatch,
                                          command: str) -> None:
    from executors.engines import ray

    made: list[object] = []

    class Counting(ToolExecutor):
        """``ray-tool`` as installed, without a Ray cluster: counts its instances."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(ray, "RayToolExecutor", Counting)
    args = {"run": [QUICKSTART, "--backend", "simulated"],
            "resume": [_seed(tmp_path, db, None)],
            "replay": [_seed(tmp_path, db, None), "--from", "b"]}[command]
    result = ponder(command, *args, "--db", db, "--json", "--tool-executor", "ray-tool")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"
    assert len(made) == 1
    assert _tool_executors(db, json.loads(result.stdout)["run_id"])[-1] == "ray-tool"
