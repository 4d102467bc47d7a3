"""A repeatable option's help shows the one value each occurrence takes (``--input
KEY=VALUE``), not typer's ``<list[str]>``, which reads as if the option took a list."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

SHOWN = [(["run"], "--input", "KEY=VALUE"), (["run"], "--model", "NAME=FILE"),
         (["replay"], "--input", "KEY=VALUE"), (["replay"], "--set", "STEP.output=JSON"),
         (["plan", "parse"], "--tool", "NAME")]


@pytest.mark.parametrize("columns", ["120", "50"])  # boxed help, plain help
@pytest.mark.parametrize(("command", "option", "value"), SHOWN)
def test_a_repeatable_option_shows_the_value_it_takes(command: list[str], option: str,
                                                      value: str, columns: str) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    assert re.search(rf"{re.escape(option)}(\s+-\w)?\s+{re.escape(value)}\s", result.stdout), \
        result.stdout
    assert "list[" not in result.stdout
