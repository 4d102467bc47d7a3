"""On a narrow terminal the help is plain text that keeps every option name whole: at
``COLUMNS=40`` typer's boxed tables cut them short (``--tool-…``, ``--input…``) and wrapped
each option's help a word a line."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import orchestrator.cli  # noqa: F401  (registers every command)
from orchestrator.cli.commands import MIN_BOXED_HELP_WIDTH, app

GROUP = typer.main.get_command(app)


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found: list[tuple[tuple[str, ...], Any]] = []
    for name, cmd in group.commands.items():
        found.append(((*prefix, name), cmd))
        if hasattr(cmd, "commands"):
            found += _commands(cmd, (*prefix, name))
    return found


COMMANDS = _commands(GROUP)


def _help(width: int, *command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": str(width)},
                                prog_name="ponder")
    assert result.exit_code == 0, result.output
    return result.output


def _names(cmd: Any) -> set[str]:
    return {name for param in cmd.params for name in (*param.opts, *param.secondary_opts)
            if name.startswith("-")}


def _shown_whole(names: set[str], text: str) -> set[str]:
    return {n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-]|…)", text)}


def test_ponder_run_help_at_40_columns_shows_every_option_whole() -> None:
    text = _help(40, "run")
    (run,) = [cmd for name, cmd in COMMANDS if name == ("run",)]
    names = _names(run)
    assert {"--input", "-i", "--inputs-json", "--tool-executor", "--model", "--db"} <= names
    assert _shown_whole(names, text) == names, text
    assert "…" not in text and "╭" not in text
    assert max(len(line) for line in text.splitlines()) <= 40, text


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[" ".join(n) for n, _ in COMMANDS])
def test_every_commands_help_keeps_its_option_names_whole(name: tuple[str, ...],
                                                          cmd: Any) -> None:
    names = _names(cmd)
    for width in (40, MIN_BOXED_HELP_WIDTH):  # plain, then typer's boxes
        text = _help(width, *name)
        assert _shown_whole(names, text) == names, (width, text)
    assert "╭" in text  # wide enough: the boxes, as before


def test_the_help_is_boxed_again_after_a_narrow_call() -> None:
    _help(40, "run")
    assert "╭" in _help(100, "run")
