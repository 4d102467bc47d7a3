"""A step's model alias that the workflow does not declare is an unknown model with or
without a `models:` section (without one it ran on the bundled model, silently), unless
the run gives it (``ponder run --model NAME=FILE``); ``default`` is always known."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import ModelOverrides, validate_file, validate_text
from orchestrator.sdk import Workflow
from orchestrator.spec.models import ModelConfig

NO_MODELS = """\
name: w
steps:
  - id: a
    kind: llm
    model: gpt5
    prompt: hi
  - id: b
    kind: map
    over: [1]
    step: {kind: llm, prompt: x, model: judge}
  - id: c
    kind: llm
    prompt: hi
"""


def test_an_undeclared_alias_is_unknown_without_models() -> None:
    problems = validate_text(NO_MODELS, "w.yaml")
    assert [(p.line, p.column, p.message) for p in problems] == [
        (5, 5, "unknown model 'gpt5'"), (10, 34, "unknown model 'judge'")]
    assert "--model gpt5=FILE" in problems[0].hint


def test_a_model_the_run_gives_is_known(tmp_path: Path) -> None:
    file = tmp_path / "w.yaml"
    file.write_text(NO_MODELS)
    assert validate_file(file, overrides=ModelOverrides(replaced=frozenset({"gpt5", "judge"}))
                         ) == []
    assert [p.message for p in validate_file(
        file, overrides=ModelOverrides(replaced=frozenset({"gpt5"})))] == [
            "unknown model 'judge'"]


def test_the_sdk_refuses_an_undeclared_alias_and_takes_a_declared_one() -> None:
    wf = Workflow("w")
    wf.llm("a", "hi", model="gpt5")
    with pytest.raises(ValidationFailed, match="unknown model 'gpt5'"):
        wf.run_sync(backend="simulated")
    wf.spec.models["gpt5"] = ModelConfig(backend="simulated")
    assert wf.run_sync().ok


def test_the_implicit_default_model_is_checked_at_its_first_step(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    text = "name: w\nsteps:\n  - {id: t, kind: tool, tool: calc, args: {expression: '1'}}\n" \
           "  - {id: a, kind: llm, prompt: hi}\n"
    problems = validate_text(text, "w.yaml")
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (4, "model 'default' (the bundled model")]
    assert "the extra `local`" in problems[0].message
    # a run on another backend, or with its own default, does not need it
    for overrides in (ModelOverrides(backend="simulated"),
                      ModelOverrides(replaced=frozenset({"default"}))):
        file = tmp_path / "w.yaml"
        file.write_text(text)
        assert validate_file(file, overrides=overrides) == []


def test_a_workflow_of_tools_needs_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    text = "name: w\nsteps:\n  - {id: t, kind: tool, tool: calc, args: {expression: '1'}}\n"
    assert validate_text(text, "w.yaml") == []

