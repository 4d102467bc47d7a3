"""The ``openai`` backend's config check (``OpenAIBackend.config_problems``), which every
way a run starts asks through ``Registry.backend_config_problems`` before anything is
recorded: :meth:`Workflow.run`, :func:`durable.resume` and a fork (``durable.replay``
with ``from_step``). A model with no name to send, or with no server and no key, failed
each of its steps at run time, one by one, under the SDK and ``ponder resume``; a replay
that runs nothing is not refused. Every problem is named at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from executors.llm.openai_compat import OpenAIBackend
from executors.llm.simulated import SimulatedBackend
from orchestrator import ConfigError, Registry, Workflow
from orchestrator.runtime.durable import replay, resume
from orchestrator.runtime.registry import ConfigProblem
from orchestrator.spec.models import ModelConfig
from orchestrator.store import StoreHook, TraceStore, open_store
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio

MODEL = "no model name to send to the server"
KEYLESS = "no server and no API key"
#: both problems of the model 'default', as the SDK, resume and fork name them
BOTH = (f"{MODEL} for model 'default': set $PONDER_OPENAI_MODEL=NAME (with "
        "PONDER_OPENAI_BASE_URL=URL for your own server), or give `model: NAME` in its "
        f"config; {KEYLESS} for model 'default': without a base_url it calls OpenAI's API, "
        "which needs $OPENAI_API_KEY=KEY; for your own server (llama.cpp, vLLM: no key "
        "needed) set PONDER_OPENAI_BASE_URL=URL, or give `base_url: URL` in its config")

# `b` asks the model; `a` and `c` are tools
FLOW = """\
name: asks
models:
  default: {backend: openai}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: llm, prompt: "say ${steps.a.output}", after: [a]}
  - {id: c, kind: tool, tool: calc, args: {expression: "2 + 2"}, after: [b]}
outputs:
  c: ${steps.c.output}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PONDER_OPENAI_MODEL", "PONDER_OPENAI_BASE_URL", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    async with await open_store(store_url) as opened:
        yield opened


# -- the rule ---------------------------------------------------------------------------

def _problems(env: dict[str, str], **config: Any) -> list[str]:
    return [p.problem for p in OpenAIBackend.config_problems(
        ModelConfig(backend="openai", **config), env)]


def test_every_problem_is_named() -> None:
    assert _problems({}) == [MODEL, KEYLESS]
    assert _problems({}, model="m", base_url="http://h/v1") == []


def test_the_environment_gives_what_the_config_does_not() -> None:
    assert _problems({"PONDER_OPENAI_MODEL": "m", "OPENAI_API_KEY": "k"}) == []
    assert _problems({"PONDER_OPENAI_BASE_URL": "http://h/v1"}) == [MODEL]
    assert _problems({"PONDER_OPENAI_MODEL": ""}) == [MODEL, KEYLESS]  # set, but empty


def test_a_server_of_ones_own_needs_no_key_and_api_key_env_names_the_key() -> None:
    assert _problems({}, model="m", base_url="http://h/v1") == []
    [problem] = OpenAIBackend.config_problems(
        ModelConfig(backend="openai", model="m", api_key_env="MY_KEY"), {})
    assert problem == ConfigProblem(
        KEYLESS, "without a base_url it calls OpenAI's API, which needs $MY_KEY=KEY; for "
        "your own server (llama.cpp, vLLM: no key needed) set PONDER_OPENAI_BASE_URL=URL",
        "base_url: URL")
    assert _problems({"MY_KEY": "k"}, model="m", api_key_env="MY_KEY") == []
    # unset, the named variable falls back to $OPENAI_API_KEY, as the backend sends it
    assert _problems({"OPENAI_API_KEY": "k"}, model="m", api_key_env="MY_KEY") == []


def test_a_base_url_that_is_not_an_http_url_is_a_problem_from_either_source() -> None:
    """It was found only when the first step built the backend: the run had started."""
    assert OpenAIBackend.config_problems(
        ModelConfig(backend="openai", model="m", base_url="ftp://x"), {}) == [ConfigProblem(
            "base_url 'ftp://x' is not an http(s) URL",
            "write the server's URL, such as 'http://127.0.0.1:8000/v1'", "base_url: URL")]
    env = {"PONDER_OPENAI_BASE_URL": "not a url", "PONDER_OPENAI_MODEL": "m"}
    assert OpenAIBackend.config_problems(ModelConfig(backend="openai"), env) == [
        ConfigProblem("$PONDER_OPENAI_BASE_URL 'not a url' holds whitespace",
                      "set it to the server's URL, such as 'http://127.0.0.1:8000/v1'",
                      "base_url: URL")]
    # the config's base_url is the one sent: the variable's is not read
    assert _problems(env, base_url="http://h/v1") == []
    assert _problems({"PONDER_OPENAI_BASE_URL": "http://h:99999/v1"}, model="m") == [
        "$PONDER_OPENAI_BASE_URL 'http://h:99999/v1' has a bad port: Port out of range "
        "0-65535"]


def test_the_backend_refuses_the_same_config_with_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        OpenAIBackend(ModelConfig(backend="openai"))
    assert str(caught.value) == (
        f"openai backend: {MODEL}: set $PONDER_OPENAI_MODEL=NAME (with "
        "PONDER_OPENAI_BASE_URL=URL for your own server), or give `model: NAME`; "
        f"{KEYLESS}: without a base_url it calls OpenAI's API, which needs "
        "$OPENAI_API_KEY=KEY; for your own server (llama.cpp, vLLM: no key needed) set "
        "PONDER_OPENAI_BASE_URL=URL, or give `base_url: URL`")


def test_the_registry_asks_the_backend_and_no_other() -> None:
    reg = Registry.default()
    assert [p.problem for p in reg.backend_config_problems(
        ModelConfig(backend="openai"))] == [MODEL, KEYLESS]
    assert reg.backend_config_problems(ModelConfig(backend="simulated")) == []
    assert reg.backend_config_problems(ModelConfig(backend="no-such")) == []


# -- Workflow.run -----------------------------------------------------------------------

def _flow(tmp_path: Path) -> Workflow:
    file = tmp_path / "asks.yaml"
    file.write_text(FLOW)
    return Workflow.from_yaml(file)


async def _runs(store: TraceStore) -> list[Any]:
    return list(await store.list_runs())


async def test_workflow_run_refuses_before_anything_is_recorded(
        tmp_path: Path, trace_store: TraceStore) -> None:
    with pytest.raises(ConfigError) as caught:
        await _flow(tmp_path).run(hooks=[StoreHook(trace_store)])
    assert str(caught.value) == BOTH
    assert await _runs(trace_store) == []


async def test_a_bad_base_url_is_refused_before_anything_is_recorded(
        tmp_path: Path, trace_store: TraceStore) -> None:
    file = tmp_path / "asks.yaml"
    file.write_text(FLOW.replace("{backend: openai}",
                                 "{backend: openai, model: m, base_url: 'ftp://x'}"))
    with pytest.raises(ConfigError) as caught:
        await Workflow.from_yaml(file).run(hooks=[StoreHook(trace_store)])
    assert str(caught.value) == (
        "base_url 'ftp://x' is not an http(s) URL for model 'default': write the server's "
        "URL, such as 'http://127.0.0.1:8000/v1', or give `base_url: URL` in its config")
    assert await _runs(trace_store) == []


async def test_a_backend_override_is_named_and_checked(trace_store: TraceStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    wf = Workflow("t", models={"big": {"backend": "simulated"}})
    wf.llm("a", "hi", model="big")
    with pytest.raises(ConfigError) as caught:
        await wf.run(backend="openai", hooks=[StoreHook(trace_store)])
    # the model's own config is on another backend: only the variables serve it
    assert str(caught.value) == (
        f"backend='openai': {MODEL} for model 'big': set $PONDER_OPENAI_MODEL=NAME (with "
        f"PONDER_OPENAI_BASE_URL=URL for your own server); {KEYLESS} for model 'big': "
        "without a base_url it calls OpenAI's API, which needs $OPENAI_API_KEY=KEY; for "
        "your own server (llama.cpp, vLLM: no key needed) set PONDER_OPENAI_BASE_URL=URL")
    assert await _runs(trace_store) == []
    assert (await wf.run(hooks=[StoreHook(trace_store)])).ok  # on its own backend it runs


async def test_a_sub_workflows_models_are_checked(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "sub.yaml").write_text(
        "name: s\nmodels:\n  m: {backend: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
        "steps:\n  - {id: b, kind: llm, model: m, prompt: hi}\n")
    file = tmp_path / "flow.yaml"
    file.write_text("name: t\nsteps:\n  - {id: a, kind: workflow, workflow: sub/sub.yaml}\n")
    with pytest.raises(ConfigError) as caught:
        await Workflow.from_yaml(file).run()
    assert str(caught.value) == (
        f"{MODEL} for model 'm' of sub-workflow sub/sub.yaml: set $PONDER_OPENAI_MODEL=NAME "
        "(with PONDER_OPENAI_BASE_URL=URL for your own server), or give `model: NAME` in "
        "its config")


# -- resume, fork and replay -------------------------------------------------------------

async def _recorded(tmp_path: Path, store: TraceStore, cut_at: tuple[str, str]
                    ) -> list[Any]:
    """A run of FLOW, its model served (as ``openai``) by the simulated engine, its trace
    kept up to the event ``cut_at`` (kind, step) as a crash leaves it, in ``store``."""
    wf = _flow(tmp_path)
    wf.register_backend("openai", SimulatedBackend)
    scratch = await open_store("memory://")
    done = await wf.run(hooks=[StoreHook(scratch)])
    assert done.ok
    events = list(await scratch.events(done.run_id))
    cut = next(e.seq for e in events if (e.kind, getattr(e, "step_id", None)) == cut_at)
    kept = [e for e in events if e.seq <= cut]
    await store.append(kept)
    return kept


async def test_resume_refuses_before_anything_is_recorded(
        tmp_path: Path, trace_store: TraceStore) -> None:
    events = await _recorded(tmp_path, trace_store, ("step_started", "b"))
    with pytest.raises(ConfigError) as caught:
        await resume(events, hooks=[StoreHook(trace_store)])
    assert str(caught.value) == BOTH
    assert len(await trace_store.events(events[0].run_id)) == len(events)


async def test_resume_after_the_models_steps_is_not_refused(
        tmp_path: Path, trace_store: TraceStore) -> None:
    events = await _recorded(tmp_path, trace_store, ("step_started", "c"))
    result = await resume(events, hooks=[StoreHook(trace_store)])
    assert result.ok and result.output == {"c": 4}


async def test_a_fork_that_asks_the_model_is_refused_a_replay_is_not(
        tmp_path: Path, trace_store: TraceStore) -> None:
    events = await _recorded(tmp_path, trace_store, ("run_finished", None))
    with pytest.raises(ConfigError) as caught:
        await replay(events, from_step="b", hooks=[StoreHook(trace_store)])
    assert str(caught.value) == BOTH
    assert len(await _runs(trace_store)) == 1
    # from `c`, after the model's step: nothing asks it
    assert (await replay(events, from_step="c", hooks=[StoreHook(trace_store)])).ok
    assert (await replay(events, hooks=[StoreHook(trace_store)])).ok
