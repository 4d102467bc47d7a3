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
    assert "no executor for step kind 'ray[red]x'" in proc.stderr


def test_an_unknown_schema_name_with_brackets_is_printed_as_written() -> None:
    proc = ponder("schema", "[red]x")
    assert proc.returncode != 0
    assert "unknown schema '[red]x'" in proc.stderr
