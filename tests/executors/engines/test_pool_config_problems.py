"""The ``pool`` backend's config check (``PoolBackend.config_problems``): what its members
lack in the environment, asked through the registry before a run starts. A pool with an
``openai`` member with no model name, or no server and no key, passed that check and
failed its first call at run time, whatever its other members, with only its first
problem named; now the run is refused up front, naming each member's problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from executors.engines.pool import PoolBackend
from orchestrator import ConfigError, Registry, Workflow
from orchestrator.spec.models import ModelConfig
from orchestrator.store import StoreHook, TraceStore, open_store
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio

MODEL = "no model name to send to the server"
KEYLESS = "no server and no API key"
FINE = {"backend": "sim-engine", "model": "llama-3-8b", "name": "fine"}
SERVED = {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the stores run on a real clock


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PONDER_OPENAI_MODEL", "PONDER_OPENAI_BASE_URL", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _pool(*members: dict[str, Any]) -> ModelConfig:
    return ModelConfig(backend="pool", options={"members": list(members), "shared": False})


def _problems(config: ModelConfig, env: dict[str, str] | None = None) -> list[str]:
    return [p.problem for p in PoolBackend.config_problems(config, env or {})]


def test_each_members_problems_are_named_with_the_member() -> None:
    config = _pool(FINE, {"backend": "openai", "name": "gpt"},
                   {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "replicas": 2})
    assert _problems(config) == [f"pool member 'gpt': {MODEL}", f"pool member 'gpt': {KEYLESS}",
                                 f"pool member 'openai-2': {MODEL}"]


def test_members_the_environment_serves_have_none() -> None:
    config = _pool(FINE, {"backend": "openai", "name": "gpt"})
    assert _problems(config, {"PONDER_OPENAI_MODEL": "m", "OPENAI_API_KEY": "k"}) == []
    assert _problems(_pool(FINE, SERVED)) == []


def test_a_member_that_is_a_pool_names_its_own_members() -> None:
    inner = {"backend": "pool", "name": "inner",
             "options": {"members": [SERVED, {"backend": "openai", "name": "gpt",
                                              "base_url": "http://127.0.0.1:8/v1"}]}}
    assert _problems(_pool(FINE, inner)) == [f"pool member 'inner': pool member 'gpt': {MODEL}"]


def test_options_or_members_that_cannot_be_read_are_left_to_validation() -> None:
    assert _problems(ModelConfig(backend="pool", options={"members": []})) == []
    assert _problems(_pool({"backend": "openai", "no_such_field": 1})) == []
    assert _problems(_pool({"backend": "no-such-backend"})) == []


def test_the_registry_passes_the_environment_on() -> None:
    config = _pool({"backend": "openai", "name": "gpt", "base_url": "http://127.0.0.1:9/v1"})
    reg = Registry.default()
    assert [p.problem for p in reg.backend_config_problems(config)] == [
        f"pool member 'gpt': {MODEL}"]
    assert reg.backend_config_problems(config, {"PONDER_OPENAI_MODEL": "m"}) == []


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    async with await open_store(store_url) as opened:
        yield opened


async def test_a_run_is_refused_before_anything_is_recorded(trace_store: TraceStore) -> None:
    # one member is fine: the run would still fail its first call to the pool
    wf = Workflow("t", models={"default": {"backend": "pool", "options": {
        "shared": False, "members": [FINE, {"backend": "openai", "name": "gpt"}]}}})
    wf.llm("a", "hi")
    with pytest.raises(ConfigError) as caught:
        await wf.run(hooks=[StoreHook(trace_store)])
    message = str(caught.value)
    assert message.startswith(f"pool member 'gpt': {MODEL} for model 'default': set "
                              "$PONDER_OPENAI_MODEL=NAME")
    assert f"; pool member 'gpt': {KEYLESS} for model 'default': " in message
    assert list(await trace_store.list_runs()) == []
