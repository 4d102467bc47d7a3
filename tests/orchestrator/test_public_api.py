"""The public API is what `orchestrator.__all__` says; schemas and README stay generated."""

from __future__ import annotations

import json
from pathlib import Path

import orchestrator
from orchestrator.schemas import all_schemas, readme_with_reference

ROOT = Path(__file__).resolve().parents[2]


def test_all_is_pinned() -> None:
    assert sorted(orchestrator.__all__) == sorted([
        "BackendError", "BackendHTTPError", "BackendUnavailable", "BranchStep", "ConfigError",
        "Event", "ExecContext", "Executor", "Hook", "JoinStep", "LLMBackend", "LLMChunk",
        "LLMRequest", "LLMResponse", "LLMStep", "MapStep", "ModelConfig", "OutputSchemaError",
        "PonderError", "Problem", "Registry", "Result", "RunResult", "SampleStep", "Scorer",
        "SpawnStep", "SpecError", "StepDefinitionError", "StepError", "StepTimeout",
        "Task", "ToolError", "ToolSpec", "ToolStep", "Usage", "ValidationFailed", "Workflow",
        "WorkflowSpec", "WorkflowStep", "tool",
    ])
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None


def test_schema_files_are_up_to_date() -> None:
    for name, doc in all_schemas().items():
        path = ROOT / "schemas" / f"{name}.schema.json"
        assert json.loads(path.read_text()) == doc, (
            f"{path.name} is stale: run `ponder schema --write schemas`")


def test_readme_yaml_reference_is_up_to_date() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_reference(readme), (
        "README's YAML reference is stale: regenerate it with "
        "orchestrator.schemas.readme_with_reference")
