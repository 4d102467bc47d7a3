"""Each command's usage line and error for a missing argument name it as the README's
command table does (`ponder run FILE`, `ponder show RUN_ID`): typer's own name was the
Python parameter's, `{file}` and `{run_id}` ("Missing argument 'run_id'")."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ARGUMENTS = [(["run"], "FILE"), (["validate"], "FILE..."), (["show"], "RUN_ID"),
             (["resume"], "RUN_ID"), (["replay"], "RUN_ID"), (["export"], "RUN_ID"),
             (["import"], "FILE"), (["plan", "parse"], "FILE"), (["schema"], "WHICH")]


@pytest.mark.parametrize(("command", "argument"), ARGUMENTS, ids=lambda c: " ".join(c))
def test_the_usage_line_names_the_argument_as_the_readme_does(command: list[str],
                                                               argument: str) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    [usage] = [line for line in result.stdout.splitlines() if "Usage:" in line]
    # (typer 0.29 marks a required argument {FILE}, an optional one [WHICH]; older ones
    # FILE and [WHICH])
    assert re.sub(r"[{}\[\]]", "", usage.split()[-1]) == argument, usage


def test_a_missing_argument_is_named_so() -> None:
    result = CliRunner().invoke(app, ["show"])
    assert result.exit_code == 2
    assert "Missing argument 'RUN_ID'." in result.stderr, result.stderr
