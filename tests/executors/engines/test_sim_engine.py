"""``sim-engine`` as an LLM backend: outputs, timing, streaming, cancellation, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import aclosing

import anyio
import pytest

from executors.engines import SimEngineBackend
from executors.engines._meta import HAS_META, meta_of
from executors.llm import SimulatedBackend
from orchestrator.errors import BackendHTTPError, BackendUnavailable, ConfigError
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, Usage
from orchestrator.sdk import Workflow
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio


async def test_is_an_llm_backend_with_the_simulated_backends_texts(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config(seed=3))
    simulated = SimulatedBackend(ModelConfig(backend="simulated",
                                             options={"time_scale": 0, "seed": 3}))
    assert isinstance(engine, LLMBackend)
    request = ask("What is 2+2?", max_tokens=32, n=2, temperature=0.5)
    got, expected = await engine.complete(request), await simulated.complete(request)
    assert got.texts == expected.texts
    assert got.completion_tokens == 64


async def test_latency_follows_the_calibrated_model(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config())
    response = await engine.complete(ask("hello", max_tokens=101))
    # ~7.1 ms per decoded token for a lone sequence on the calibrated H100
    assert response.ttft_s == pytest.approx(0.00704, rel=0.05)
    assert response.latency_s == pytest.approx(0.00704 + 100 * 0.00706, rel=0.02)


async def test_concurrent_requests_share_iterations(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config())
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(32):
            tg.start_soon(engine.complete, ask(f"question {i}", max_tokens=100))
    # one batch of 32: about 8.8 ms per step instead of 32 x 7 ms
    assert anyio.current_time() - start < 1.2
    assert engine.counters.max_running == 32
    assert engine.counters.finished == 32


async def test_a_json_schema_gives_a_valid_value(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    response = await SimEngineBackend(sim_config()).complete(
        ask("count", max_tokens=20, json_schema=schema))
    assert isinstance(json.loads(response.text)["n"], int)


async def test_stream_yields_text_then_a_final_chunk(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config())
    pieces = []
    async with aclosing(engine.stream(ask("tell me", max_tokens=40))) as chunks:
        async for chunk in chunks:
            pieces.append(chunk)
    final = pieces[-1].final
    assert final is not None
    assert "".join(p.text for p in pieces[:-1]) == final.text
    assert len(pieces) > 3


async def test_cancelling_a_call_aborts_it_at_the_engine(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config())
    with anyio.move_on_after(0.2):
        await engine.complete(ask("long", max_tokens=10_000))
    assert engine.counters.aborted == 1
    assert engine.active == 0
    assert not engine.model.has_work()
    response = await engine.complete(ask("next", max_tokens=5))  # the engine still works
    assert response.completion_tokens == 5


async def test_usage_counts_what_the_engine_did_for_running_and_queued_calls(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config(max_num_seqs=1))
    running, queued = Usage(), Usage()
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.complete, ask("first " * 40, max_tokens=500, usage=running))
        await anyio.sleep(0.01)
        tg.start_soon(engine.complete, ask("second " * 40, max_tokens=500, usage=queued))
        await anyio.sleep(0.3)
        tg.cancel_scope.cancel()
    assert engine.counters.aborted == 2
    # the running call: its prompt and what it decoded, not the 500 tokens planned
    assert running.prompt_tokens == engine.counters.prefill_tokens
    assert 0 < running.completion_tokens == engine.counters.decode_tokens < 500
    assert queued == Usage()  # never admitted: nothing spent

    done = Usage()
    response = await engine.complete(ask("third", max_tokens=7, n=2, usage=done))
    assert done == Usage(response.prompt_tokens, response.completion_tokens) == Usage(
        response.prompt_tokens, 14)


async def test_a_rejected_call_records_no_usage(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    usage = Usage()
    with pytest.raises(BackendHTTPError):
        await SimEngineBackend(sim_config(max_model_len=100)).complete(
            ask("hi", max_tokens=200, usage=usage))
    assert usage == Usage()


async def test_a_request_that_cannot_fit_is_a_bad_request(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config(max_model_len=100))
    with pytest.raises(BackendHTTPError) as info:
        await engine.complete(ask("hi", max_tokens=200))
    assert info.value.status == 400


async def test_an_engine_that_dies_fails_its_calls_as_unavailable(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    engine = SimEngineBackend(sim_config(die_after_requests=2))
    await engine.complete(ask("one", max_tokens=5))

    async def slow() -> None:
        with pytest.raises(BackendUnavailable, match="died"):
            await engine.complete(ask("slow", max_tokens=500))

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow)
        await anyio.sleep(0.01)
        await engine.complete(ask("two", max_tokens=5))
    assert not await engine.health()
    with pytest.raises(BackendUnavailable, match="dead"):
        await engine.complete(ask("three"))


async def test_bad_options_are_config_errors(sim_config: Callable[..., ModelConfig]) -> None:
    with pytest.raises(ConfigError, match="kv_blocks"):
        SimEngineBackend(sim_config(kv_blocks=0))
    with pytest.raises(ConfigError, match="unknown option"):
        SimEngineBackend(sim_config(gpu="h100"))


@pytest.mark.skipif(not HAS_META, reason="LLMResponse has no `meta` field yet")
async def test_responses_record_engine_details(
        ask: Callable[..., LLMRequest], sim_config: Callable[..., ModelConfig]) -> None:
    response = await SimEngineBackend(sim_config(name="gpu0")).complete(ask("x", max_tokens=4))
    meta = meta_of(response)
    assert meta["engine"] == "gpu0"
    assert meta["decode_s"] > 0


async def test_a_workflow_runs_on_the_simulated_engine() -> None:
    wf = Workflow("sim", models={"default": {"backend": "sim-engine", "options": {
        "responses": [{"match": "capital", "output": "Paris"}], "output_tokens": "text"}}})
    wf.register_backend("sim-engine", SimEngineBackend)
    wf.llm("a", prompt="What is the capital of France?")
    wf.llm("b", prompt="Repeat: {{ steps.a.output }}", max_tokens=8)
    result = await wf.run()
    assert result.ok, result.error
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]
