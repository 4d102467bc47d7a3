"""`ponder run` refuses, before the run starts, a model served by the `openai` backend with
no model name to send (no `model:`, $PONDER_OPENAI_MODEL unset): with `--backend openai`
each LLM step failed at run time with "openai backend: set `model:` or ...", one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke

RUN = ("run", "examples/quickstart.yaml", "--json", "--db", "memory://", "-i", "spiders=2")
ENV = "PONDER_OPENAI_MODEL"


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("PONDER_OPENAI_BASE_URL", raising=False)
    # a key: the model name is the one problem (test_model_config_checks.py: both)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # the client's: off the net


def test_backend_openai_without_a_model_name_is_refused_up_front() -> None:
    error = error_of(invoke(*RUN, "--backend", "openai"), "config")
    assert error["message"] == (
        "--backend openai: no model name to send to the server for model 'default': set "
        f"${ENV}=NAME (with PONDER_OPENAI_BASE_URL=URL for your own server), or serve it with "
        "--model default=FILE, a model config giving `backend: openai` and `model: NAME` "
        "(see examples/models/openai_compatible.yaml)")


def test_the_variable_names_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "some-model")
    monkeypatch.setenv("PONDER_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens
    result = invoke(*RUN, "--backend", "openai")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed"  # it ran: the server cannot be reached
    assert "no model name" not in result.stderr


def test_a_model_file_without_a_model_name_is_named(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("backend: openai\nbase_url: http://127.0.0.1:9/v1\n")
    error = error_of(invoke(*RUN, "--model", f"default={model}"), "config")
    assert error["message"].startswith("no model name to send to the server for model "
                                       "'default'")
    assert error["message"].endswith(f"or give `model: NAME` in {model}")
    model.write_text("backend: openai\nbase_url: http://127.0.0.1:9/v1\nmodel: m\n")
    assert json.loads(invoke(*RUN, "--model", f"default={model}").stdout)["status"] == "failed"


def test_the_workflows_models_are_checked_too(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: t\nmodels:\n  big: {backend: openai}\n  small: {backend: simulated}\n"
                    "steps:\n  - {id: a, kind: llm, model: big, prompt: hi}\n"
                    "  - {id: b, kind: llm, model: small, prompt: hi}\n")
    error = error_of(invoke("run", str(flow), "--json", "--db", "memory://"), "config")
    assert error["message"].startswith("no model name to send to the server for model 'big':")
    assert error["message"].endswith(f"give `model: NAME` under `models: big` in {flow}")
    error = error_of(invoke("run", str(flow), "--json", "--db", "memory://", "--backend",
                            "openai"), "config")
    assert "for models 'big', 'small':" in error["message"]


def test_a_workflow_without_llm_steps_needs_no_model_name(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: t\nsteps:\n  - {id: a, kind: tool, tool: calc, "
                    "args: {expression: '1+1'}}\n")
    result = invoke("run", str(flow), "--json", "--db", "memory://", "--backend", "openai")
    assert result.exit_code == 0, result.stdout
