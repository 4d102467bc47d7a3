"""`ponder run --model NAME=FILE` serves NAME to the sub-workflows that run on the
workflow's models (those without `models:` of their own), as the README says. It was
refused when only such a sub-workflow used NAME: "declares no models and no step uses
model 'big' (it uses no model)", or with the parent's `models:`, "declares no model
'big'"; the only way out was declaring NAME in the parent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import one_line_error, ponder

CHILD = """\
name: child
steps:
  - {id: s, kind: llm, prompt: hello, model: big}
  - {id: t, kind: llm, prompt: "again {{ steps.s.output }}"}
"""
BIG = "backend: simulated\noptions: {time_scale: 0, responses: [{match: hello, output: BIG}]}\n"
SIM = "models:\n  default: {backend: simulated, options: {time_scale: 0}}\n"


def _parent(tmp_path: Path, models: str, depth: int = 1) -> str:
    (tmp_path / "big.yaml").write_text(BIG)
    (tmp_path / "child.yaml").write_text(CHILD)
    callee = "child.yaml"
    for level in range(1, depth):  # middle workflows without models: pass theirs on
        (tmp_path / f"mid{level}.yaml").write_text(
            f"name: mid{level}\nsteps:\n  - {{id: c, kind: workflow, workflow: {callee}}}\n")
        callee = f"mid{level}.yaml"
    (tmp_path / "p.yaml").write_text(
        f"name: p\n{models}steps:\n  - {{id: c, kind: workflow, workflow: {callee}}}\n")
    return str(tmp_path / "p.yaml")


@pytest.mark.parametrize("depth", [1, 3])
def test_a_sub_workflow_on_the_parents_models_gets_the_alias(tmp_path: Path,
                                                             depth: int) -> None:
    file = _parent(tmp_path, SIM, depth)
    result = ponder("run", file, "--db", "memory://", "--json", "--model",
                    f"big={tmp_path / 'big.yaml'}")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded"
    assert run["output"] != "BIG"  # t ran on the parent's default, after s got BIG


def test_without_models_the_rest_runs_on_the_default(tmp_path: Path) -> None:
    # no models anywhere: the child's `default` step gets the bundled model's config,
    # served here by --backend simulated
    file = _parent(tmp_path, "")
    result = ponder("run", file, "--db", "memory://", "--json", "--backend", "simulated",
                    "--model", f"big={tmp_path / 'big.yaml'}")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["status"] == "succeeded"


def test_a_sub_workflow_with_models_of_its_own_is_not_served(tmp_path: Path) -> None:
    file = _parent(tmp_path, SIM)
    (tmp_path / "child.yaml").write_text(CHILD.replace(
        "steps:", "models:\n  big: {backend: simulated}\n  default: {backend: simulated}\n"
        "steps:"))
    one_line_error(ponder("run", file, "--db", "memory://", "--model",
                          f"big={tmp_path / 'big.yaml'}"),
                   f"--model big: {file} declares no model 'big' (models: default)")
