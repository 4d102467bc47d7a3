"""No flag of any command shows typer's `<bool>` label in `--help`, as if it took a
value: `ponder runs --help` showed `--top-level <bool>` (the flags that tests named,
--json and --debug, had lost theirs; this one was missed)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli import app


def _commands(group: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    if hasattr(group, "list_commands"):  # (the commands load when first listed)
        ctx = group.context_class(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            found += _commands(command, [*path, name])
    return found


COMMANDS = _commands(typer.main.get_command(app), [])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "ponder")
def test_no_flag_shows_a_bool_label(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout and "BOOLEAN" not in result.stdout, result.stdout


def test_every_command_is_checked() -> None:
    assert ["runs"] in COMMANDS and ["plan", "parse"] in COMMANDS
