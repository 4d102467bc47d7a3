"""Each paragraph of a command's help is one line, for the help to wrap at the terminal's
width: typer kept a docstring's line breaks after its first paragraph (`ponder resume
--help` at 80 columns: "...the sub-workflow runs it had in" / "flight" / "continue under
their own ids."), and `ponder view --help` showed the blank lines before its ``\\f``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

import orchestrator.cli  # noqa: F401  (registers every command)
from orchestrator.cli.commands import app

ROOT = Path(__file__).resolve().parents[3]


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, cmd in group.commands.items():
        found.append((f"{prefix}{name}", cmd))
        if hasattr(cmd, "commands"):
            found += _commands(cmd, f"{prefix}{name} ")
    return found


def test_each_paragraph_of_a_commands_help_is_one_line() -> None:
    listed = _commands(typer.main.get_command(app))
    assert {"resume", "gc", "view", "plan parse", "db upgrade"} <= {n for n, _ in listed}
    for name, cmd in listed:
        text = cmd.help or ""
        assert "\f" not in text and ":raises" not in text, name
        assert "\n" not in text.replace("\n\n", ""), (name, text)
        assert text == text.strip(), name


def _help(*command: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", *command, "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    return [line.strip() for line in proc.stdout.splitlines()]


def test_the_help_wraps_at_the_terminals_width() -> None:
    # a word left alone on a line where the docstring broke it
    assert "flight" not in _help("resume")
    assert not {"their", "that", "old."} & set(_help("gc"))
    blank = longest = 0
    for line in _help("view"):
        blank = blank + 1 if not line else 0
        longest = max(longest, blank)
    assert longest == 1
