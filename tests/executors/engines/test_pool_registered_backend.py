"""A ``pool`` member whose backend is registered on the workflow only
(``Workflow.register_backend``). The pool found, checked and built its members through a
fresh ``Registry()`` of the installed backends, so such a member was an "unknown LLM
backend": the run's step failed, and its config and options were never checked. Now the
registry that serves the pool (the run's, the workflow's) is the one its members come
from, nested pools included; a pool served by a fresh registry still finds the installed
backends only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import pytest

from executors.engines.pool import PoolBackend
from orchestrator import ConfigError, Registry, Workflow
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.runtime.registry import ConfigProblem
from orchestrator.spec.models import ModelConfig
from orchestrator.store import StoreHook, TraceStore, open_store
from tests.fakes import Echo as BaseEcho
from tests.store.conftest import pg_server, pg_url, store_url  # noqa: F401  (each backend)

pytestmark = pytest.mark.anyio


class Echo(BaseEcho):
    """The tests' backend, counting its calls (the models it answered for); its config
    needs a ``model`` (an environment's ``ECHO_MODEL`` would give it)."""

    calls: ClassVar[list[str | None]] = []  # reset by a fixture

    @classmethod
    def config_problems(cls, config: ModelConfig, env: Mapping[str, str]
                        ) -> list[ConfigProblem]:
        if config.model or env.get("ECHO_MODEL"):
            return []
        return [ConfigProblem("no model to echo", "set $ECHO_MODEL=NAME", "model: NAME")]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        Echo.calls.append(self.model)
        return await super().complete(request)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the stores run on a real clock


@pytest.fixture(autouse=True)
def _fresh() -> None:
    Echo.calls = []


@pytest.fixture
async def trace_store(store_url: str) -> AsyncIterator[TraceStore]:  # noqa: F811
    async with await open_store(store_url) as opened:
        yield opened


def _workflow(*members: dict[str, Any]) -> Workflow:
    wf = Workflow("t", models={"default": {"backend": "pool", "options": {
        "shared": False, "members": list(members)}}})
    wf.register_backend("echo", Echo)
    wf.llm("a", "hi")
    return wf


async def test_a_registered_backend_serves_as_a_member(trace_store: TraceStore) -> None:
    wf = _workflow({"backend": "echo", "model": "m1", "name": "mine"})
    result = await wf.run(hooks=[StoreHook(trace_store)])
    assert result.ok, result.error
    assert result.output == "echo m1"
    assert Echo.calls == ["m1"]
    assert len(list(await trace_store.list_runs())) == 1


async def test_a_member_that_is_a_pool_finds_it_too() -> None:
    inner = {"backend": "pool", "name": "inner", "options": {"members": [
        {"backend": "echo", "model": "deep", "options": {"prefix": "from"}}]}}
    result = await _workflow(inner).run()
    assert result.ok, result.error
    assert result.output == "from deep"
    assert Echo.calls == ["deep"]


async def test_its_config_problems_refuse_the_run_naming_the_member(
        trace_store: TraceStore) -> None:
    wf = _workflow({"backend": "simulated", "name": "fine"},
                   {"backend": "echo", "name": "mine"})
    with pytest.raises(ConfigError) as caught:
        await wf.run(hooks=[StoreHook(trace_store)])
    assert str(caught.value).startswith(
        "pool member 'mine': no model to echo for model 'default': set $ECHO_MODEL=NAME")
    assert list(await trace_store.list_runs()) == []
    assert Echo.calls == []


def test_its_options_are_checked_naming_the_member() -> None:
    wf = _workflow()
    options = {"members": [{"backend": "echo", "model": "m", "name": "mine",
                            "options": {"prefx": "x"}}]}
    problems = wf.registry.backend_option_problems("pool", options)
    assert [where for where, _ in problems] == [("members", 0, "options", "prefx")]
    assert problems[0][1].startswith(
        "pool backend options: member 'mine': echo backend options: unknown option 'prefx'")
    nested = {"members": [{"backend": "pool", "name": "inner", "options": options}]}
    assert [where for where, _ in wf.registry.backend_option_problems("pool", nested)] == [
        ("members", 0, "options", "members", 0, "options", "prefx")]


def test_a_fresh_registry_knows_the_installed_backends_only() -> None:
    options = {"members": [{"backend": "echo", "model": "m"}]}
    problems = Registry.default().backend_option_problems("pool", options)
    assert [where for where, _ in problems] == [("members", 0, "backend")]
    assert "unknown LLM backend 'echo'" in problems[0][1]
    assert PoolBackend.option_problems(options) == problems
    with pytest.raises(ConfigError, match="member 0: unknown LLM backend 'echo'"):
        PoolBackend(ModelConfig(backend="pool", options={**options, "shared": False}))


def test_each_registry_binds_the_pool_once() -> None:
    reg = Registry.default()
    bound = reg.backend_factory("pool")
    assert bound is reg.backend_factory("pool")
    assert issubclass(bound, PoolBackend) and bound is not PoolBackend
    assert bound.__qualname__ == "PoolBackend"
    copy = reg.copy()
    assert copy.backend_factory("pool") is not bound  # a copy may hold other backends
    assert reg.bound_factory(Echo) is Echo  # no `with_registry`: served as it is


class Loud(Echo):
    """Another backend, registered under the same name by another workflow."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        answer = await super().complete(request)
        answer.text = answer.text.upper()
        return answer


async def test_a_shared_pool_is_shared_only_where_members_are_the_same_backends() -> None:
    from executors.engines._hub import SharedObjects

    hub = SharedObjects()
    built: list[PoolBackend] = []

    def core(reg: Registry, config: ModelConfig) -> object:
        factory: Any = reg.backend_factory("pool")
        built.append(factory(config, shared=hub))
        return built[-1]._core

    config = ModelConfig(backend="pool", options={"members": [
        {"backend": "echo", "model": "m"},
        {"backend": "pool", "name": "inner", "options": {"members": [
            {"backend": "simulated"}]}}]})
    one, same, other = Registry.default(), Registry.default(), Registry.default()
    one.backends["echo"] = same.backends["echo"] = Echo
    other.backends["echo"] = Loud
    assert core(one, config) is core(one, config) is core(same, config)
    assert core(other, config) is not core(one, config)
    assert type(built[3].members[0].backend) is Loud
    nested = ModelConfig(backend="pool", options={"members": [
        {"backend": "pool", "options": {"members": [{"backend": "echo", "model": "m"}]}}]})
    assert core(one, nested) is not core(other, nested)
    plain = ModelConfig(backend="pool", options={"members": [{"backend": "simulated"}]})
    assert core(one, plain) is core(other, plain)  # installed backends only: shared
    for pool in built:
        await pool.aclose()
    assert not hub._entries
