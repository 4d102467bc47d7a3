"""``--tool-executor`` takes an executor of tool steps only: ``--tool-executor llm`` ran
each tool step with the LLM executor, which failed it with "unexpected AttributeError:
'ToolStep' object has no attribute 'model'" (a failed run recorded), and an unknown name
said "no executor for step kind ...", though the option names no step kind."""

from __future__ import annotations

import pytest

from tests.orchestrator.cli.test_json_errors import QUICKSTART, error_of, ponder

INSTALLED = "installed for tool steps: ray-tool, tool"


@pytest.mark.parametrize("kind", ["llm", "workflow", "plan", "spawn", "sample", "join"])
def test_the_executor_of_another_step_kind_is_refused(kind: str) -> None:
    error = error_of(ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                            "--json", "--tool-executor", kind), "config")
    assert error["message"] == (f"--tool-executor '{kind}': that executor runs {kind} "
                                f"steps, not tool steps; {INSTALLED}")


def test_an_unknown_executor_lists_those_installed() -> None:
    error = error_of(ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                            "--json", "--tool-executor", "nope"), "config")
    assert error["message"] == f"--tool-executor 'nope': no such executor; {INSTALLED}"


def test_the_tool_executor_still_runs_tool_steps() -> None:
    result = ponder("run", QUICKSTART, "--backend", "simulated", "--db", "memory://",
                    "--json", "--tool-executor", "tool")
    assert result.exit_code == 0, result.stderr
