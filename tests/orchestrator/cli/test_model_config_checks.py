"""``ponder run`` names every problem of the models it would serve at once (a model with no
name to send and no server or key was refused for the first, then, once fixed, for the
second), and ``ponder resume`` refuses such a model before the run goes on (it failed
each of the model's steps at run time)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from executors.llm.simulated import SimulatedBackend
from orchestrator import Workflow
from orchestrator.store import StoreHook, open_store
from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke

RUN = ("run", "examples/quickstart.yaml", "--json", "--db", "memory://", "-i", "spiders=2")


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PONDER_OPENAI_MODEL", "PONDER_OPENAI_BASE_URL", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_both_problems_in_one_message() -> None:
    error = error_of(invoke(*RUN, "--backend", "openai"), "config")
    fix = ("or serve it with --model default=FILE, a model config giving `backend: openai` "
           "and `{}` (see examples/models/openai_compatible.yaml)")
    assert error["message"] == (
        "--backend openai: no model name to send to the server for model 'default': set "
        "$PONDER_OPENAI_MODEL=NAME (with PONDER_OPENAI_BASE_URL=URL for your own server), "
        + fix.format("model: NAME") + "; no server and no API key for model 'default': "
        "without a base_url it calls OpenAI's API, which needs $OPENAI_API_KEY=KEY; for "
        "your own server (llama.cpp, vLLM: no key needed) set PONDER_OPENAI_BASE_URL=URL, "
        + fix.format("base_url: URL"))


def test_each_problem_names_its_models_and_where_to_fix_them(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: t\nmodels:\n"
                    "  big: {backend: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
                    "  small: {backend: openai, model: m}\n"
                    "steps:\n  - {id: a, kind: llm, model: big, prompt: hi}\n"
                    "  - {id: b, kind: llm, model: small, prompt: hi}\n")
    error = error_of(invoke("run", str(flow), "--json", "--db", "memory://"), "config")
    assert error["message"] == (
        "no model name to send to the server for model 'big': set $PONDER_OPENAI_MODEL=NAME "
        "(with PONDER_OPENAI_BASE_URL=URL for your own server), or give `model: NAME` under "
        f"`models: big` in {flow}; no server and no API key for model 'small': without a "
        "base_url it calls OpenAI's API, which needs $OPENAI_API_KEY=KEY; for your own "
        "server (llama.cpp, vLLM: no key needed) set PONDER_OPENAI_BASE_URL=URL, or give "
        f"`base_url: URL` under `models: small` in {flow}")


def test_a_bad_base_url_in_the_environment_is_refused_before_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The run started, and recorded its step failed for it."""
    monkeypatch.setenv("PONDER_OPENAI_BASE_URL", "not a url")
    monkeypatch.setenv("PONDER_OPENAI_MODEL", "m")
    error = error_of(invoke(*RUN, "--backend", "openai"), "config")
    assert error["message"] == (
        "--backend openai: $PONDER_OPENAI_BASE_URL 'not a url' holds whitespace for model "
        "'default': set it to the server's URL, such as 'http://127.0.0.1:8000/v1', or serve "
        "it with --model default=FILE, a model config giving `backend: openai` and "
        "`base_url: URL` (see examples/models/openai_compatible.yaml)")


@pytest.mark.parametrize(("model", "field", "said"), [
    ("{backend: openai, model: m, base_url: 'ftp://x'}", "base_url",
     "base_url 'ftp://x' is not an http(s) URL"),
    ("{backend: local, options: {model_path: no-such.gguf}}", "model_path",
     "model_path 'no-such.gguf' is not a file"),
])
def test_a_bad_field_of_a_model_is_located_before_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str, field: str,
        said: str) -> None:
    """``ponder validate`` said ok; ``ponder run`` started the run, whose step failed."""
    monkeypatch.chdir(tmp_path)
    flow = tmp_path / "flow.yaml"
    flow.write_text(f"name: t\nmodels:\n  default: {model}\n"
                    "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    where = f"{flow}:3:{flow.read_text().splitlines()[2].index(field) + 1}"  # at its key
    validated = invoke("validate", str(flow))
    assert validated.exit_code == 1
    assert f"{where}: error: model 'default': {said}\n" in validated.stderr
    error = error_of(invoke("run", str(flow), "--json", "--db", "memory://"), "workflow")
    assert error["location"] == where
    assert [p["message"] for p in error["problems"]] == [f"model 'default': {said}"]


FLOW = """\
name: asks
models:
  default: {backend: openai}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: llm, prompt: "say ${steps.a.output}", after: [a]}
"""


def test_resume_refuses_the_model_before_the_run_goes_on(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'ponder.db'}"
    file = tmp_path / "asks.yaml"
    file.write_text(FLOW)

    async def recorded() -> str:
        """A run of FLOW (its model served by the simulated engine) cut as `b` started."""
        wf = Workflow.from_yaml(file)
        wf.register_backend("openai", SimulatedBackend)
        async with await open_store("memory://") as scratch:
            done = await wf.run(hooks=[StoreHook(scratch)])
            events = list(await scratch.events(done.run_id))
        cut = next(e.seq for e in events
                   if e.kind == "step_started" and getattr(e, "step_id", None) == "b")
        async with await open_store(db) as store:
            await store.append([e for e in events if e.seq <= cut])
        return done.run_id

    async def count(run_id: str) -> int:
        async with await open_store(db) as store:
            return len(await store.events(run_id))

    run_id = anyio.run(recorded)
    kept = anyio.run(count, run_id)
    error = error_of(invoke("resume", run_id, "--json", "--db", db), "config")
    assert error["message"].startswith(
        "no model name to send to the server for model 'default': set "
        "$PONDER_OPENAI_MODEL=NAME")
    assert "; no server and no API key for model 'default':" in error["message"]
    assert anyio.run(count, run_id) == kept  # nothing recorded
