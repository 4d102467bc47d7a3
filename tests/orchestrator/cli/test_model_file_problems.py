"""`ponder run --model NAME=FILE`: every problem of FILE is reported at its FILE:line:column,
in the words `ponder validate` has for a model under a workflow's `models:` (it reported
pydantic's first error only, without a line: "name: Extra inputs are not permitted")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke


def _problems(model: Path, kind: str = "config") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    error = error_of(invoke("run", "examples/quickstart.yaml", "--json", "--db", "memory://",
                            "--model", f"default={model}"), kind)
    return error, error["problems"]


def test_each_misspelt_field_is_located_and_names_the_field_meant(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("backend: openai\nmodel: m\n  # a comment\nbase_ulr: http://h\n"
                     "concurency: 2\n")
    error, problems = _problems(model)
    assert error["message"] == (f"--model default: {model} is not a valid model config "
                                "(2 problems)")
    assert error["location"] == f"{model}:4:1"
    assert problems == [
        {"message": "unknown field `base_ulr`", "location": f"{model}:4:1",
         "hint": "did you mean `base_url`? Else remove it"},
        {"message": "unknown field `concurency`", "location": f"{model}:5:1",
         "hint": "did you mean `concurrency`? Else remove it"}]


def test_the_same_typo_is_worded_as_validate_words_it_under_models(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("backend: openai\nbase_ulr: http://h\n")
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: t\nmodels:\n  default:\n    backend: openai\n    base_ulr: http://h\n"
                    "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    [validated] = error_of(invoke("validate", str(flow), "--json"), "workflow")["problems"]
    [given] = _problems(model)[1]
    assert given["hint"] == validated["hint"] == "did you mean `base_url`? Else remove it"
    assert validated["message"].startswith(given["message"])


def test_a_workflow_given_as_a_model_file_is_named_as_such() -> None:
    error, problems = _problems(Path("examples/quickstart.yaml"))
    [problem] = problems
    assert problem["message"] == "this file is a workflow (it has `steps:`), not a model config"
    assert problem["location"].startswith("examples/quickstart.yaml:")
    assert problem["location"].count(":") == 2
    assert "Extra inputs" not in error["message"]


def test_values_out_of_range_are_each_located(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("backend: simulated\nconcurrency: 0\noptions: 3\n")
    _, problems = _problems(model)
    assert [p["location"] for p in problems] == [f"{model}:2:1", f"{model}:3:1"]
    assert problems[0]["message"].startswith("concurrency: Input should be greater than")


def test_a_file_of_no_mapping_or_nothing_is_named(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("- backend\n")
    [problem] = _problems(model)[1]
    assert problem["message"] == "a model config is a mapping of fields, not ['backend']"
    model.write_text("# nothing yet\n")
    error, [problem] = _problems(model, "file")
    assert error["message"] == f"--model default: {model} holds no model config (1 problem)"
    assert problem["hint"] == "write a model config in it, e.g. `backend: simulated`"


def test_broken_yaml_is_located(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("backend: simulated\noptions: {a: 1\n")
    error, [problem] = _problems(model, "file")
    assert error["message"].endswith("is not valid YAML (1 problem)")
    assert problem["location"].startswith(f"{model}:")
    assert problem["message"].startswith("YAML syntax:")
