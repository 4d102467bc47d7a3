"""A run reads the model aliases its steps name once, not once per sub-workflow it
starts: each ``workflow`` step dumped every step of the workflow for them (a sub-workflow
without ``models:`` may name them), so n such steps cost n² step dumps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.graph import subworkflows
from orchestrator.runtime import engine
from orchestrator.spec.models import WorkflowSpec

CHILD = """\
name: child
inputs:
  x: {type: integer}
steps:
  - id: a
    kind: tool
    tool: calc
    args: {expression: "${inputs.x} + 1"}
outputs:
  y: ${steps.a.output}
"""


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the workflows whose steps' model aliases are read."""
    read: list[str] = []
    original = subworkflows.model_aliases

    def counted(spec: WorkflowSpec) -> frozenset[str]:
        read.append(spec.name)
        return original(spec)

    monkeypatch.setattr(subworkflows, "model_aliases", counted)
    monkeypatch.setattr(engine, "model_aliases", counted)
    return read


def _parent(tmp_path: Path, n: int, models: dict[str, Any] | None = None) -> Workflow:
    (tmp_path / "child.yaml").write_text(CHILD)
    wf = Workflow("parent", models=models)
    wf.base_dir = tmp_path
    for i in range(n):
        wf.call(f"s{i}", "child.yaml", x=i)
    return wf


def test_a_run_of_many_sub_workflows_reads_its_aliases_once(
        tmp_path: Path, reads: list[str]) -> None:
    n = 30
    result = _parent(tmp_path, n).run_sync(backend="simulated")
    assert result.status == "succeeded", result.error
    assert sorted(result.output.values(), key=lambda o: o["y"]) == [
        {"y": i + 1} for i in range(n)]
    assert reads.count("parent") <= 2  # the check before the run, and the run (it was n + 1)


def test_a_workflow_with_models_has_its_aliases_never_read_for_its_sub_workflows(
        tmp_path: Path, reads: list[str]) -> None:
    wf = _parent(tmp_path, 3, models={"default": {"backend": "simulated"}})
    result = wf.run_sync(backend="simulated")
    assert result.status == "succeeded", result.error
    assert "parent" not in reads
