"""The ``pool`` backend: routing, prefix affinity, limits, failover, policies, sharing."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend, SimEngineBackend, VLLMBackend, fake_vllm_api
from executors.engines._hub import SharedObjects
from executors.engines._meta import HAS_META, meta_of
from executors.engines._policy import Call, PolicySettings, ServiceLedger, level, sort_key
from orchestrator.errors import BackendHTTPError, BackendUnavailable, ConfigError
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, LLMResponse
from orchestrator.sdk import Workflow
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]

SIM = {"backend": "sim-engine", "model": "llama-3-8b"}


def engines(pool: PoolBackend) -> list[SimEngineBackend]:
    return [m.backend for m in pool.members]  # type: ignore[misc]


async def test_is_an_llm_backend_and_spreads_load(ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 4, "concurrency": 4}]))
    assert isinstance(pool, LLMBackend)
    async with anyio.create_task_group() as tg:
        for i in range(16):
            tg.start_soon(pool.complete, ask(f"question {i}", max_tokens=50))
    assert [s.calls for s in pool.stats().values()] == [4, 4, 4, 4]
    assert all(s.max_in_flight <= 4 for s in pool.stats().values())
    await pool.aclose()


async def test_calls_with_one_prefix_key_stay_on_one_engine(ask: Ask, pool_config: Config
                                                            ) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 4}]))
    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(pool.complete, ask(f"noise {i}", max_tokens=200))
        for i in range(6):
            tg.start_soon(pool.complete, ask(f"child {i}", max_tokens=20, prefix_key="parent"))
    assert sum(s.affinity for s in pool.stats().values()) == 5
    assert max(s.affinity for s in pool.stats().values()) == 5
    await pool.aclose()


async def test_a_long_shared_prompt_prefix_reuses_the_engines_cache(
        ask: Ask, pool_config: Config) -> None:
    context = "The parent's long context. " * 200  # 5400 characters
    results = {}
    for routing in ("least_loaded", "prefix_affinity"):
        pool = PoolBackend(pool_config([{**SIM, "replicas": 4}], routing=routing))
        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(pool.complete, ask(f"{context}\nchild {i}", max_tokens=30,
                                                 request_id=f"run1/child{i}/1"))
                await anyio.sleep(0.05)
        results[routing] = sum(e.counters.prefill_tokens for e in engines(pool))
        await pool.aclose()
    assert results["prefix_affinity"] * 2 < results["least_loaded"]


async def test_affinity_yields_to_an_idle_engine_when_its_engine_is_overloaded(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 2, "concurrency": 2}],
                                   affinity_slack=0.5))
    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(pool.complete, ask(f"c{i}", max_tokens=100, prefix_key="same"))
    assert all(s.calls > 0 for s in pool.stats().values())
    await pool.aclose()


async def test_an_engine_dying_mid_run_loses_no_call(ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 3, "concurrency": 2}]))
    victim = engines(pool)[0]
    answers = []

    async def one(i: int) -> None:
        answers.append(await pool.complete(ask(f"q{i}", max_tokens=300)))

    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(one, i)
        await anyio.sleep(0.5)
        victim.kill("power loss")
    assert len(answers) == 12
    stats = pool.stats()
    assert stats["sim-engine-0.0"].ejections == 1
    assert pool.retries >= 1
    assert await pool.check_health() == {"sim-engine-0.0": False, "sim-engine-0.1": True,
                                         "sim-engine-0.2": True}
    await pool.aclose()


async def test_a_dead_engine_is_probed_again_later(ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 2}], probe_after_s=10))
    first, _ = engines(pool)
    first.kill()
    for _ in range(4):
        await pool.complete(ask("x", max_tokens=5))
    assert pool.members[0].down_since is not None
    first._dead = None  # the engine comes back (restarted)
    await anyio.sleep(11)
    for i in range(4):
        await pool.complete(ask(f"y{i}", max_tokens=5))
    assert pool.members[0].down_since is None
    assert first.counters.finished > 0
    await pool.aclose()


async def test_health_checks_take_failing_engines_out(pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 2}]))
    engines(pool)[1].kill()
    assert await pool.check_health() == {"sim-engine-0.0": True, "sim-engine-0.1": False}
    assert pool.members[1].down_since is not None
    assert await pool.health()
    await pool.aclose()


async def test_when_every_engine_is_down_the_error_names_them(ask: Ask, pool_config: Config
                                                               ) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 2}]))
    for engine in engines(pool):
        engine.kill("GPU fell off the bus")
    with pytest.raises(BackendUnavailable) as info:
        await pool.complete(ask("x"))
    assert "sim-engine-0.0" in str(info.value) and "sim-engine-0.1" in str(info.value)
    await pool.aclose()


async def test_bad_requests_are_not_retried(ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 2, "options": {"max_model_len": 64}}]))
    with pytest.raises(BackendHTTPError):
        await pool.complete(ask("x", max_tokens=100))
    assert pool.retries == 0
    assert all(m.down_since is None for m in pool.members)
    await pool.aclose()


class _Misconfigured(SimEngineBackend):
    """A member whose server answers 404: its base_url or model name is wrong."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise BackendHTTPError("http://gpu-box:8000/nope/v1/chat/completions: HTTP 404: "
                               "Not Found", status=404)


async def test_a_misconfigured_member_does_not_fail_the_calls_it_gets(
        ask: Ask, pool_config: Config) -> None:
    factories = {"sim-engine": SimEngineBackend, "wrong": _Misconfigured}
    pool = PoolBackend(pool_config([{**SIM, "backend": "wrong", "name": "typo"},
                                    {**SIM, "name": "ok"}], routing="least_loaded"),
                       resolve=factories.__getitem__)
    answers = [await pool.complete(ask(f"q{i}", max_tokens=5)) for i in range(4)]
    assert len(answers) == 4
    assert pool.retries == 1 and pool.stats()["typo"].ejections == 1
    assert "HTTP 404" in pool.members[0].last_error
    await pool.aclose()


async def test_a_stream_moves_to_another_engine_before_its_first_chunk(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "replicas": 2}], routing="least_loaded"))
    engines(pool)[0].kill()
    chunks = [c async for c in pool.stream(ask("stream me", max_tokens=20))]
    assert chunks[-1].final is not None
    assert pool.retries == 1
    await pool.aclose()


async def test_an_engine_dying_mid_stream_is_taken_out(ask: Ask, pool_config: Config) -> None:
    shared = SharedObjects()
    made: list[VLLMBackend] = []

    def make(config: ModelConfig) -> VLLMBackend:
        made.append(VLLMBackend(config, api=fake_vllm_api(step_s=0.01, tokens_per_step=1),
                                shared=shared))
        return made[-1]

    pool = PoolBackend(pool_config([
        {"backend": "vllm", "model": "m", "options": {"gpu": i}, "name": f"gpu{i}"}
        for i in (0, 1)], routing="least_loaded"), resolve=lambda name: make)
    with pytest.raises(BackendUnavailable, match="dead"):
        async for _ in pool.stream(ask("a long story", max_tokens=200)):
            made[0]._engine.kill()  # after the first chunk: too late to move the call
    assert pool.members[0].down_since is not None
    await pool.complete(ask("next", max_tokens=5))
    assert (pool.stats()["gpu0"].calls, pool.stats()["gpu1"].calls) == (1, 1)
    assert pool.retries == 0  # the next call went straight to the healthy engine
    await pool.aclose()
    await shared.aclose()


class _Hung(SimEngineBackend):
    """An engine whose health check never answers."""

    async def health(self) -> bool:
        await anyio.sleep_forever()
        return True


async def test_a_hung_health_check_times_out_and_takes_the_engine_out(
        ask: Ask, pool_config: Config) -> None:
    factories = {"sim-engine": SimEngineBackend, "hung": _Hung}
    pool = PoolBackend(pool_config([{**SIM, "name": "ok"},
                                    {**SIM, "backend": "hung", "name": "stuck"}],
                                   health_timeout_s=2), resolve=factories.__getitem__)
    started = anyio.current_time()
    assert await pool.check_health() == {"ok": True, "stuck": False}
    assert anyio.current_time() - started == pytest.approx(2.0)
    assert pool.members[1].down_since is not None
    assert "did not answer within 2s" in pool.members[1].last_error
    await pool.aclose()


async def test_calls_do_not_all_wait_for_the_probe_of_a_hung_engine(
        ask: Ask, pool_config: Config) -> None:
    factories = {"sim-engine": SimEngineBackend, "hung": _Hung}
    pool = PoolBackend(pool_config([{**SIM, "name": "ok"},
                                    {**SIM, "backend": "hung", "name": "stuck"}],
                                   routing="least_loaded", health_timeout_s=10,
                                   probe_after_s=30), resolve=factories.__getitem__)
    pool.members[1].backend.kill("hung")  # type: ignore[attr-defined]
    pool._core.eject(pool.members[1])
    await anyio.sleep(31)  # the stuck engine is due a probe
    waits: list[float] = []

    async def one(i: int) -> None:
        started = anyio.current_time()
        await pool.complete(ask(f"q{i}", max_tokens=5))
        waits.append(anyio.current_time() - started)

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)
            await anyio.sleep(0.2)
    # one call probes it (and waits out health_timeout_s); the others go to "ok"
    assert sum(w > 5 for w in waits) == 1
    assert pool.members[1].down_since is not None
    assert pool.members[1].down_since >= 40  # counted from the probe's end: not due again
    await pool.aclose()


class _Slow(SimEngineBackend):
    """An engine whose health check takes a second."""

    async def health(self) -> bool:
        await anyio.sleep(1)
        return await super().health()


async def test_when_every_engine_is_down_calls_wait_for_the_probe_in_progress(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "backend": "slow", "name": "only"}],
                                   probe_after_s=30), resolve=lambda name: _Slow)
    pool._core.eject(pool.members[0])  # it failed, and is back by the time it is probed
    await anyio.sleep(31)
    answers = []

    async def one(i: int) -> None:
        answers.append(await pool.complete(ask(f"q{i}", max_tokens=5)))

    async with anyio.create_task_group() as tg:
        for i in range(3):  # the first probes it; the others wait for its answer
            tg.start_soon(one, i)
    assert len(answers) == 3 and pool.members[0].down_since is None
    await pool.aclose()


# -- policies -------------------------------------------------------------------------------
async def _order(policy: str, ask: Ask, pool_config: Config) -> list[str]:
    """Finish order of calls queued behind a busy engine of one slot."""
    pool = PoolBackend(pool_config([{**SIM, "concurrency": 1}], policy=policy))
    core = pool._core
    core.ledger.add("heavy", 0, 50_000, 0.1)  # a run that has had a lot of service
    done: list[str] = []

    async def one(name: str, run: str, critical_path: float) -> None:
        await pool.complete(ask(name, max_tokens=10, run_id=run, priority=critical_path))
        done.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "blocker", "other", 0.0)
        await anyio.sleep(0.001)
        # arrival order differs from every policy's order, so each test can tell them apart
        tg.start_soon(one, "light-short", "light2", 5.0)
        await anyio.sleep(0.001)
        tg.start_soon(one, "heavy-long", "heavy", 50.0)
        await anyio.sleep(0.001)
        tg.start_soon(one, "light-long", "light", 40.0)
    await pool.aclose()
    return done


async def test_fifo_serves_in_arrival_order(ask: Ask, pool_config: Config) -> None:
    assert await _order("fifo", ask, pool_config) == [
        "blocker", "light-short", "heavy-long", "light-long"]


async def test_critical_path_serves_the_longest_path_first(ask: Ask, pool_config: Config
                                                           ) -> None:
    assert await _order("critical_path", ask, pool_config) == [
        "blocker", "heavy-long", "light-long", "light-short"]


async def test_program_aware_serves_runs_with_little_service_first(ask: Ask,
                                                                   pool_config: Config) -> None:
    assert await _order("program_aware", ask, pool_config) == [
        "blocker", "light-short", "light-long", "heavy-long"]


def test_program_aware_levels_and_anti_starvation() -> None:
    settings = PolicySettings(quantum_tokens=1000, starvation_s=30, starvation_ratio=1e9)
    ledger = ServiceLedger()
    ledger.add("big", 0, 10_000, 0.1)
    assert [level(s, settings) for s in (0, 999, 1000, 3000, 10**9)] == [0, 0, 1, 2, 7]
    old = Call("big", 1.0, arrival=0.0, seq=0)
    new = Call("small", 1.0, arrival=20.0, seq=1)
    for call in (old, new):  # both waiting for a slot since they arrived
        ledger.queued(call, call.arrival)
    assert sort_key(new, settings, ledger, now=25) < sort_key(old, settings, ledger, now=25)
    assert sort_key(old, settings, ledger, now=31) < sort_key(new, settings, ledger, now=31)


async def test_the_run_comes_from_the_request_id_when_run_id_is_unset(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([SIM]))
    await pool.complete(ask("x", max_tokens=7, request_id="r42/step/1"))
    assert pool._core.ledger.get("r42") > 7
    await pool.aclose()


@pytest.mark.skipif(not HAS_META, reason="LLMResponse has no `meta` field yet")
async def test_each_response_records_policy_and_engine(ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "name": "gpu"}], policy="critical_path"))
    meta = meta_of(await pool.complete(ask("x", max_tokens=5, priority=3.0)))
    assert meta["policy"] == "critical_path"
    assert meta["engine"] == "gpu"
    assert meta["priority"] == 3.0
    await pool.aclose()


# -- configuration and sharing ----------------------------------------------------------------
@pytest.mark.parametrize(("members", "message"), [
    ([{"backend": "no-such-backend"}], "member 0: unknown LLM backend 'no-such-backend'"),
    ([{"backend": "sim-engine", "colour": "red"}], "member 0: colour"),
    ([{"backend": "sim-engine", "replicas": 0}], "replicas must be a positive integer"),
    ([{"backend": "sim-engine", "options": {"kv_blocks": -1}}], "member 'sim-engine-0'"),
    ([SIM, {**SIM, "name": "sim-engine-0"}], "member names must be unique"),
])
def test_bad_members_are_config_errors(members: list[dict[str, Any]], message: str,
                                       pool_config: Config) -> None:
    with pytest.raises(ConfigError, match=message):
        PoolBackend(pool_config(members))


async def test_a_member_whose_backend_is_not_installed_is_left_out(
        ask: Ask, pool_config: Config, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # vLLM is not installed
    pool = PoolBackend(pool_config([{**SIM, "name": "sim"},
                                    {"backend": "vllm", "model": "m", "name": "gpu"}]))
    assert [m.name for m in pool.members] == ["sim"]
    assert "vLLM is not installed" in pool.skipped["gpu"]
    assert "starts without member 'gpu'" in caplog.text
    assert (await pool.complete(ask("x", max_tokens=5))).text
    assert await pool.check_health() == {"sim": True, "gpu": False}
    pool.members[0].backend.kill()  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match=r"gpu \(not installed: .*vLLM is not installed"):
        await pool.complete(ask("y"))
    await pool.aclose()


def test_a_pool_with_no_installed_member_is_a_config_error(
        pool_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ConfigError, match=r"no member can start here: gpu: .*vLLM is not "
                                          r"installed.*ponder\[gpu\]"):
        PoolBackend(pool_config([{"backend": "vllm", "model": "m", "name": "gpu"}]))


def machine(monkeypatch: pytest.MonkeyPatch, *, gpus: int) -> None:
    """vLLM importable here (its API from ``fake_vllm``), on a machine whose PyTorch sees
    ``gpus`` CUDA GPUs: what a ``vllm`` member finds on a CPU-only box with vLLM
    installed (gpus=0), or on a small GPU box. Nothing of Ponder is replaced."""
    from executors.engines import fake_vllm

    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: gpus > 0, device_count=lambda: gpus)
    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = fake_vllm.SamplingParams  # type: ignore[attr-defined]
    vllm.sampling_params = fake_vllm  # type: ignore[attr-defined]
    vllm.AsyncLLMEngine = fake_vllm.AsyncLLM  # type: ignore[attr-defined]
    arg_utils = types.ModuleType("vllm.engine.arg_utils")
    arg_utils.AsyncEngineArgs = fake_vllm.AsyncEngineArgs  # type: ignore[attr-defined]
    for name, module in {"torch": torch, "vllm": vllm,
                         "vllm.engine": types.ModuleType("vllm.engine"),
                         "vllm.engine.arg_utils": arg_utils, "vllm.v1": None}.items():
        monkeypatch.setitem(sys.modules, name, module)


GPU_MEMBER = {"backend": "vllm", "model": "m", "name": "gpu"}


async def test_a_vllm_member_without_a_gpu_is_left_out(
        ask: Ask, pool_config: Config, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    machine(monkeypatch, gpus=0)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        VLLMBackend(ModelConfig(backend="vllm", model="m"))  # what the pool meets
    pool = PoolBackend(pool_config([{**SIM, "name": "sim"}, GPU_MEMBER]))
    assert [m.name for m in pool.members] == ["sim"]
    assert pool.skipped["gpu"].startswith("cannot run here: no CUDA GPU is visible")
    assert "starts without member 'gpu': cannot run here" in caplog.text
    assert (await pool.complete(ask("x", max_tokens=5))).text
    assert await pool.check_health() == {"sim": True, "gpu": False}
    pool.members[0].backend.kill()  # type: ignore[attr-defined]
    with pytest.raises(BackendUnavailable, match=r"gpu \(cannot run here: no CUDA GPU"):
        await pool.complete(ask("y"))
    await pool.aclose()


def test_a_vllm_member_on_a_gpu_that_does_not_exist_is_left_out(
        pool_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, gpus=1)
    pool = PoolBackend(pool_config([{**GPU_MEMBER, "name": "gpu0"},
                                    {**GPU_MEMBER, "name": "gpu1", "options": {"gpu": 1}}]))
    assert [m.name for m in pool.members] == ["gpu0"]
    assert isinstance(pool.members[0].backend, VLLMBackend)
    assert pool.skipped == {"gpu1": "cannot run here: gpu 1 does not exist (1 visible)"}


def test_a_pool_whose_members_all_lack_a_gpu_is_a_config_error(
        pool_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, gpus=0)
    with pytest.raises(ConfigError, match=r"pool 'pooled': no member can start here: "
                                          r"gpu: cannot run here: no CUDA GPU is visible .*; "
                                          r"gpu2: cannot run here: no CUDA GPU"):
        PoolBackend(pool_config([GPU_MEMBER, {**GPU_MEMBER, "name": "gpu2"}]))


def test_a_bad_vllm_option_on_a_gpu_machine_is_still_an_error(
        pool_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, gpus=1)
    with pytest.raises(ConfigError, match=r"member 'gpu': vllm backend options: "
                                          r"gpu_memory_utilization: .* \(got 2\)"):
        PoolBackend(pool_config([SIM, {**GPU_MEMBER,
                                       "options": {"gpu_memory_utilization": 2}}]))


SERVER = {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "m"}


@pytest.mark.parametrize("members", [
    [SERVER, {**SERVER, "base_url": "http://127.0.0.1:8000/v1/"}],
    [{**SERVER, "replicas": 2}],
])
def test_two_members_reaching_one_server_are_a_config_error(
        members: list[dict[str, Any]], pool_config: Config) -> None:
    with pytest.raises(ConfigError, match=r"members 'openai-0(\.0)?' and 'openai-(1|0\.1)' "
                                          r"reach the same engine \(model 'm' at "
                                          r"http://127\.0\.0\.1:8000/v1/\); list it once"):
        PoolBackend(pool_config(members))


def test_one_server_may_serve_two_models_and_one_model_two_servers(
        pool_config: Config) -> None:
    pool = PoolBackend(pool_config([SERVER, {**SERVER, "model": "other"},
                                    {**SERVER, "base_url": "http://127.0.0.1:8001/v1"}]))
    assert len(pool.members) == 3


def test_two_vllm_members_with_the_same_engine_arguments_are_a_config_error(
        pool_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, gpus=2)  # such members share one engine in this process
    with pytest.raises(ConfigError, match=r"members 'gpu' and 'again' reach the same engine "
                                          r"\(vllm:"):
        PoolBackend(pool_config([GPU_MEMBER, {**GPU_MEMBER, "name": "again"}]))
    pool = PoolBackend(pool_config([{**GPU_MEMBER, "options": {"gpu": 0}},
                                    {**GPU_MEMBER, "name": "gpu1", "options": {"gpu": 1}}]))
    assert [m.name for m in pool.members] == ["gpu", "gpu1"]


def test_a_misspelt_member_is_still_an_error(pool_config: Config) -> None:
    with pytest.raises(ConfigError, match="member 1: unknown LLM backend 'sim-engin'"):
        PoolBackend(pool_config([SIM, {**SIM, "backend": "sim-engin"}]))


def test_a_pool_needs_members() -> None:
    with pytest.raises(ConfigError, match="members"):
        PoolBackend(ModelConfig(backend="pool", options={}))


async def test_runs_with_the_same_config_share_one_pool(ask: Ask) -> None:
    shared = SharedObjects()
    config = ModelConfig(backend="pool", options={"members": [SIM]})
    first, second = PoolBackend(config, shared=shared), PoolBackend(config, shared=shared)
    assert first.members[0] is second.members[0]
    await first.complete(ask("a", max_tokens=3))
    await first.aclose()
    assert len(shared._entries) == 1
    await second.complete(ask("b", max_tokens=3))
    await second.aclose()
    assert len(shared._entries) == 0


async def test_concurrent_workflow_runs_share_the_pool() -> None:
    shared = SharedObjects()
    models = {"default": {"backend": "pool", "model": "m", "options": {
        "members": [{**SIM, "replicas": 2}], "policy": "program_aware"}}}
    pools: list[PoolBackend] = []

    def make(config: ModelConfig) -> PoolBackend:
        pools.append(PoolBackend(config, shared=shared))
        return pools[-1]

    wf = Workflow("pooled", models=models, inputs={"q": "string"})
    wf.register_backend("pool", make)
    wf.llm("plan", prompt="Plan: {{ inputs.q }}", max_tokens=30)
    wf.llm("answer", prompt="Answer {{ steps.plan.output }}", max_tokens=30)
    results = []

    async def one(i: int) -> None:
        results.append(await wf.run({"q": f"question {i}"}))

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(one, i)
    assert all(r.ok for r in results), [r.error for r in results]
    assert len({id(p._core) for p in pools}) == 1
    ledger = pools[0]._core.ledger
    assert all(ledger.run(r.run_id) is not None and ledger.get(r.run_id) > 0 for r in results)
    assert not shared._entries  # the last run closed it
