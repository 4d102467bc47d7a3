"""`ponder run`'s summary on stderr lists what went wrong; the children a fan-out's join
cancels on purpose once it has its answer (first_finish) are not that: a run that
succeeded listed each as `think[0]: cancelled: cancelled at the engine`."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from orchestrator.cli import app


def test_children_a_succeeded_first_finish_cancelled_are_not_listed() -> None:
    result = CliRunner().invoke(app, ["run", "examples/scaling/first_finish.yaml",
                                      "--db", "memory://"])
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(r"succeeded run \w+ in [\d.]+s, tokens \d+\+\d+\n", result.stderr), (
        result.stderr)

