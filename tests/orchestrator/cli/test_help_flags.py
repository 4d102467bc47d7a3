"""A flag (``--json``, ``--debug``, ``--version``, ``--help``) takes no value, and the
boxed help shows no type label after it (typer's own is ``<bool>``, as if it took one;
``--help``, which typer builds itself, kept it)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

COMMANDS = [[], ["run"], ["validate"], ["runs"], ["show"], ["resume"], ["replay"],
            ["export"], ["import"], ["gc"], ["view"], ["schema"], ["db"], ["db", "upgrade"],
            ["plan"], ["plan", "parse"]]


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "ponder")
def test_flags_have_no_type_label(command: list[str]) -> None:
    text = _help(*command)
    flags = re.findall(r"(--json|--debug|--version|--help)\s+(\S+)", text)
    assert "--help" in dict(flags), text
    assert all(not label.startswith("<") for _, label in flags), text


def test_options_that_take_a_value_keep_theirs() -> None:
    text = _help("runs")
    # (<int> in the typer installed here, INTEGER in older ones)
    assert re.search(r"--limit\s+(<int>|INTEGER)\s+Rows to show", text), text
