"""A run whose steps all succeed but whose `outputs:` fail (a declared type, a schema, a
path the output does not have) printed only "failed run ..." on stderr: no step failed,
and the reason was only in `--json` and `ponder show`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

STEP = "steps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '2+2'}}\n"


@pytest.mark.parametrize(("outputs", "reason"), [
    ("n: {from: '${steps.a.output}', type: string}", "outputs: output 'n' must be string, got 4"),
    ("n: {from: '${steps.a.output}', schema: {type: number, maximum: 3}}",
     "outputs: output 'n' does not satisfy its schema: at $: 4 is greater than the maximum of 3"),
])
def test_the_reason_of_a_failed_output_is_printed(tmp_path: Path, outputs: str,
                                                  reason: str) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(f"name: outs\n{STEP}outputs:\n  {outputs}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--db", "memory://"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[0].startswith("failed run ")
    assert result.stderr.splitlines()[1:] == [f"  {reason}"]


def test_a_failed_step_is_not_said_twice(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("name: bad\nsteps:\n  - {id: a, kind: tool, tool: calc, "
                    "args: {expression: '1/0'}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--db", "memory://"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()[1:]
    assert len(lines) == 1 and lines[0].startswith("  a: failed: "), lines
