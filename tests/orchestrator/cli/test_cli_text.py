"""Text a user wrote (inputs, ids, error messages) reaches the terminal as written:
rich reads ``[word]`` as a style tag and would drop it."""

from __future__ import annotations

from tests.orchestrator.cli.test_cli import ponder


def test_a_bad_option_value_with_brackets_is_printed_as_written() -> None:
    proc = ponder("run", "examples/quickstart.yaml", "--backend", "simulated",
                  "--input", "[bold]spiders")
    assert proc.returncode == 1
    assert "--input '[bold]spiders' must look like key=value" in proc.stderr


def test_an_error_holding_brackets_is_printed_as_written() -> None:
    proc = ponder("run", "examples/quickstart.yaml", "--backend", "simulated",
                  "--db", "memory://", "--tool-executor", "ray[red]x")
    assert proc.returncode == 1
    assert "--tool-executor 'ray[red]x': no such executor" in proc.stderr


def test_an_unknown_schema_name_with_brackets_is_printed_as_written() -> None:
    proc = ponder("schema", "[red]x")
    assert proc.returncode != 0
    assert "unknown schema '[red]x'" in proc.stderr


def test_each_command_is_summed_up_in_one_line() -> None:
    """`ponder --help` lists each command with the first paragraph of its help, line
    breaks kept: resume, gc, view and plan parse showed a sentence broken mid-way."""
    from typing import Any

    import typer

    import orchestrator.cli  # noqa: F401  (registers every command)
    from orchestrator.cli.commands import app

    def commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
        # (typer may bring its own copy of click: its groups are known by their commands)
        found: list[tuple[str, Any]] = []
        for name, cmd in group.commands.items():
            found.append((f"{prefix}{name}", cmd))
            if hasattr(cmd, "commands"):
                found += commands(cmd, f"{prefix}{name} ")
        return found

    listed = commands(typer.main.get_command(app), "")
    assert {"run", "resume", "gc", "view", "plan parse", "db upgrade"} <= {n for n, _ in listed}
    for name, cmd in listed:
        summary = (cmd.short_help or (cmd.help or "").split("\n\n")[0]).strip()
        assert summary and "\n" not in summary, (name, summary)
