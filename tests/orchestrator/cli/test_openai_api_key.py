"""`ponder run` refuses, before the run starts, a model served by the `openai` backend
that would call OpenAI's own API (no `base_url:`, $PONDER_OPENAI_BASE_URL unset) without
an API key ($OPENAI_API_KEY, or the variable its `api_key_env` names): each LLM step
failed at run time with "openai backend: no API key; ...", one by one. A server of one's
own (llama.cpp, vLLM) needs no key. The models of the sub-workflows the run runs are
checked as the workflow's own are, the model name (test_openai_model_name.py) too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke

RUN = ("run", "examples/quickstart.yaml", "--json", "--db", "memory://", "-i", "spiders=2")
NOWHERE = "http://127.0.0.1:9/v1"  # nothing listens: a run that starts fails its steps


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PONDER_OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PONDER_OPENAI_MODEL", "some-model")


def _ran(*args: str) -> bool:
    """Whether the run started (and failed: no server answers)."""
    result = invoke(*args)
    assert "no API key" not in result.stderr and "no model name" not in result.stderr
    return bool(json.loads(result.stdout)["status"] == "failed")


def test_backend_openai_without_a_key_or_a_server_is_refused_up_front() -> None:
    error = error_of(invoke(*RUN, "--backend", "openai"), "config")
    assert error["message"] == (
        "--backend openai: no server and no API key for model 'default': without a base_url "
        "it calls OpenAI's API, which needs $OPENAI_API_KEY=KEY; for your own server "
        "(llama.cpp, vLLM: no key needed) set PONDER_OPENAI_BASE_URL=URL, or serve it with "
        "--model default=FILE, a model config giving `backend: openai` and `base_url: URL` "
        "(see examples/models/openai_compatible.yaml)")


def test_a_key_or_a_server_of_ones_own_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_OPENAI_BASE_URL", NOWHERE)
    assert _ran(*RUN, "--backend", "openai")  # a local server: no key
    monkeypatch.delenv("PONDER_OPENAI_BASE_URL")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", NOWHERE)  # the client's own: keeps it off the net
    assert _ran(*RUN, "--backend", "openai")


def test_a_model_file_with_a_base_url_needs_no_key(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(f"backend: openai\nbase_url: {NOWHERE}\n")
    assert _ran(*RUN, "--model", f"default={model}")
    model.write_text("backend: openai\n")
    error = error_of(invoke(*RUN, "--model", f"default={model}"), "config")
    assert error["message"].startswith("no server and no API key for model 'default':")
    assert error["message"].endswith(f"or give `base_url: URL` in {model}")


def test_api_key_env_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: t\nmodels:\n  big: {backend: openai, api_key_env: MY_KEY}\n"
                    "steps:\n  - {id: a, kind: llm, model: big, prompt: hi}\n")
    run = ("run", str(flow), "--json", "--db", "memory://")
    error = error_of(invoke(*run), "config")
    assert "which needs $MY_KEY=KEY;" in error["message"]
    assert error["message"].endswith(f"or give `base_url: URL` under `models: big` in {flow}")
    monkeypatch.setenv("MY_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", NOWHERE)
    assert _ran(*run)


def _parent(tmp_path: Path, models: str = "") -> Path:
    flow = tmp_path / "flow.yaml"
    flow.write_text(f"name: t\n{models}steps:\n"
                    "  - {id: a, kind: workflow, workflow: sub/sub.yaml}\n")
    (tmp_path / "sub").mkdir()
    return flow


def test_a_sub_workflows_own_models_are_checked(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    flow = _parent(tmp_path)
    sub = tmp_path / "sub" / "sub.yaml"
    sub.write_text("name: s\nmodels:\n  m: {backend: openai}\n  q: {backend: simulated}\n"
                   "steps:\n  - {id: b, kind: llm, model: m, prompt: hi}\n"
                   "  - {id: c, kind: llm, model: q, prompt: hi}\n")
    run = ("run", str(flow), "--json", "--db", "memory://")
    error = error_of(invoke(*run), "config")
    assert error["message"].startswith(f"no server and no API key for model 'm' of "
                                       f"sub-workflow {sub}:")
    assert error["message"].endswith(f"or give `base_url: URL` under `models: m` in {sub}")
    monkeypatch.delenv("PONDER_OPENAI_MODEL")
    error = error_of(invoke(*run), "config")
    assert error["message"].startswith(f"no model name to send to the server for model 'm' "
                                       f"of sub-workflow {sub}:")
    # --backend openai puts the simulated one there too: only the variables serve it
    # (--model serves the workflow's own models, not a sub-workflow's)
    error = error_of(invoke(*run, "--backend", "openai"), "config")
    assert f"models 'm' of sub-workflow {sub}, 'q' of sub-workflow {sub}:" in error["message"]
    # both problems, the model name's first
    assert (" (with PONDER_OPENAI_BASE_URL=URL for your own server), or give `model: NAME` "
            f"under `models: m` in {sub}; no server and no API key for models 'm' of "
            f"sub-workflow {sub}, 'q' of sub-workflow {sub}:") in error["message"]
    monkeypatch.setenv("PONDER_OPENAI_MODEL", "some-model")
    monkeypatch.setenv("PONDER_OPENAI_BASE_URL", NOWHERE)
    assert _ran(*run)


def test_a_sub_workflow_without_models_runs_on_its_callers(tmp_path: Path) -> None:
    flow = _parent(tmp_path, "models:\n  default: {backend: simulated}\n"
                             "  big: {backend: openai}\n")
    (tmp_path / "sub" / "sub.yaml").write_text(
        "name: s\nsteps:\n  - {id: b, kind: llm, model: big, prompt: hi}\n")
    error = error_of(invoke("run", str(flow), "--json", "--db", "memory://"), "config")
    assert error["message"].startswith("no server and no API key for model 'big':")
    assert error["message"].endswith(f"or give `base_url: URL` under `models: big` in {flow}")
