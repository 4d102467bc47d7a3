"""`ponder run -` and `ponder validate -` say that a workflow is read from its file, not
from standard input; they said "cannot read -: No such file or directory" and "check the
path", as if - were a file that went missing. A file named - is still read (./-)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

SAID = ("-: error: cannot read -: a workflow is read from its file, not from standard "
        "input\n    hint: save it to a file: the tools and sub-workflows it names are found "
        "from the file's folder\n")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_standard_input_is_not_taken_for_a_missing_file(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [command, "-", "--db", str(tmp_path / "t.db")]
                                if command == "run" else [command, "-"],
                                input="name: w\nsteps: []\n")
    assert result.exit_code == 1
    assert result.stderr.startswith(SAID)


def test_a_file_named_dash_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_text("name: w\nsteps:\n  - {id: a, kind: tool, tool: calc, "
                                "args: {expression: '1 + 1'}}\n")
    result = CliRunner().invoke(app, ["validate", "-"])
    assert result.exit_code == 0, result.stderr
