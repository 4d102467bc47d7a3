"""`ponder runs` that lists nothing says so on stderr, naming the store it looked in (a
header alone, after a run made with another --db, read as a broken command); stdout
keeps the header, and --json its empty list."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.store._url import hide_password

CALC = "name: w\nsteps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '6*7'}}\n"


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_an_empty_store_says_it_has_no_runs(db: str) -> None:
    result = ponder("runs", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["run", "workflow", "status", "started", "duration",
                                     "tokens", "steps"]
    assert result.stderr == f"no runs in the trace store {hide_password(db)}\n"
    listed = ponder("runs", "--db", db, "--json")
    assert listed.stdout == "[]\n" and listed.stderr == ""


def test_filters_that_match_nothing_are_named(db: str, tmp_path: Path) -> None:
    flow = tmp_path / "w.yaml"
    flow.write_text(CALC)
    assert ponder("run", str(flow), "--db", db).exit_code == 0
    where = hide_password(db)
    assert ponder("runs", "--db", db).stderr == ""
    assert ponder("runs", "--db", db, "--status", "failed", "--workflow", "w").stderr == (
        f"no failed runs of workflow 'w' in the trace store {where}\n")
    assert ponder("runs", "--db", db, "--offset", "1").stderr == (
        f"no runs past the first 1 in the trace store {where}\n")
    assert ponder("runs", "--db", db, "--limit", "0").stderr == ""  # none were asked for
