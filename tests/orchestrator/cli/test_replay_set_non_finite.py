"""``ponder replay --set STEP.output=NaN`` is refused, as ``--input`` and
``--inputs-json`` refuse NaN and Infinity: Python's JSON parser reads them, so the fork
recorded a number JSON has none for and ``--json`` printed ``"output": Infinity``, which
no JSON parser but Python's reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import error_of, ponder

FLOW = """\
name: w
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
"""


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[str, str]:
    """A store holding one run of FLOW, and that run's id."""
    flow = tmp_path / "w.yaml"
    flow.write_text(FLOW)
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    result = ponder("run", str(flow), "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    return db, json.loads(result.stdout)["run_id"]


@pytest.mark.parametrize(("value", "where"), [
    ("NaN", "a.output is NaN"),
    ("-Infinity", "a.output is -Infinity"),
    ('{"x": [1, Infinity]}', "a.output.x[1] is Infinity"),
])
def test_a_set_output_json_has_no_number_for_is_refused(recorded: tuple[str, str],
                                                         value: str, where: str) -> None:
    db, run_id = recorded
    error = error_of(ponder("replay", run_id, "--from", "a", "--set", f"a.output={value}",
                            "--db", db, "--json"), "usage")
    assert error["message"] == f"--set a.output: {where}, which JSON has no number for"
    listed = json.loads(ponder("runs", "--db", db, "--json").stdout)
    assert len(listed) == 1  # no fork was recorded


def test_a_finite_set_output_still_forks(recorded: tuple[str, str]) -> None:
    db, run_id = recorded
    result = ponder("replay", run_id, "--from", "a", "--set", "a.output=1e308", "--db", db,
                    "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"
