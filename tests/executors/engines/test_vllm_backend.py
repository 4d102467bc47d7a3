"""The in-process vLLM backend, against the fake engine that has vLLM's AsyncLLM API."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import anyio
import pytest

from executors.engines import PoolBackend, VLLMBackend, fake_vllm_api
from executors.engines._hub import SharedObjects
from executors.engines._meta import HAS_META, meta_of
from executors.engines.fake_vllm import (
    START_ERRORS,
    AsyncEngineArgs,
    AsyncLLM,
    EngineGenerateError,
    SamplingParams,
    VLLMClientError,
    VLLMError,
    VLLMValidationError,
)
from orchestrator.errors import BackendError, BackendHTTPError, BackendUnavailable, ConfigError
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, Usage
from orchestrator.sdk import Workflow
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio
Ask = Callable[..., LLMRequest]
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}},
          "required": ["answer"]}


def backend(shared: SharedObjects | None = None, *, api_kwargs: dict[str, Any] | None = None,
            **options: Any) -> VLLMBackend:
    return VLLMBackend(ModelConfig(backend="vllm", model=MODEL, options=options),
                       api=fake_vllm_api(**(api_kwargs or {})), shared=shared or SharedObjects())


def engine_of(b: VLLMBackend) -> AsyncLLM:
    return b._engine  # type: ignore[no-any-return]


async def test_engine_arguments_come_from_the_models_section(ask: Ask) -> None:
    b = backend(dtype="bfloat16", gpu_memory_utilization=0.8, max_model_len=8192,
                enable_prefix_caching=True, tensor_parallel_size=1)
    assert isinstance(b, LLMBackend)
    await b.complete(ask("hi", max_tokens=5))
    assert engine_of(b).args == AsyncEngineArgs(
        model=MODEL, dtype="bfloat16", gpu_memory_utilization=0.8, max_model_len=8192,
        enable_prefix_caching=True, tensor_parallel_size=1, scheduling_policy="priority",
        seed=0)
    await b.aclose()


async def test_a_schema_becomes_structured_outputs_and_n_samples_one_request(ask: Ask) -> None:
    b = backend()
    response = await b.complete(ask("count", max_tokens=30, n=3, temperature=0.8,
                                    json_schema=SCHEMA, seed=7))
    (sent,) = engine_of(b).requests
    params = sent["params"]
    assert params.structured_outputs.json == SCHEMA
    assert (params.n, params.temperature, params.max_tokens, params.seed) == (3, 0.8, 30, 7)
    assert len(response.texts) == 3
    assert all(isinstance(json.loads(t)["answer"], int) for t in response.texts)
    assert response.prompt_tokens > 0
    assert response.completion_tokens == sum(len(t) // 4 + (len(t) % 4 > 0)
                                             for t in response.texts)
    assert "<|user|>\ncount" in sent["prompt"]  # the tokenizer's chat template was applied


async def test_top_p_is_passed_only_when_set(ask: Ask) -> None:
    """Without `top_p` the request leaves SamplingParams' default (1.0: no nucleus cut)."""
    b = backend()
    await b.complete(ask("a", top_p=0.9, temperature=0.7))
    await b.complete(ask("b"))
    assert [s["params"].top_p for s in engine_of(b).requests] == [0.9, 1.0]
    await b.aclose()


async def test_sampling_params_of_the_model_go_with_every_request(ask: Ask) -> None:
    b = backend(sampling_params={"top_k": 20, "repetition_penalty": 1.05})
    await b.complete(ask("a", temperature=0.7))
    await b.complete(ask("b", n=2))
    assert [(s["params"].top_k, s["params"].repetition_penalty, s["params"].n)
            for s in engine_of(b).requests] == [(20, 1.05, 1), (20, 1.05, 2)]
    await b.aclose()


@pytest.mark.parametrize(("sampling", "words"), [
    ({"top_kk": 20}, "vllm backend options: sampling_params: "),
    ({"top_k": -5}, "vllm backend options: sampling_params: top_k must be 0 (disable), or "
                    "at least 1, got -5."),
    ({"temperature": 0.2, "top_k": 3}, "Ponder sets 'temperature' (from the step's "
                                       "`temperature`); leave it out of sampling_params"),
])
def test_sampling_params_vllm_or_ponder_would_refuse_are_config_errors(
        sampling: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        backend(sampling_params=sampling)
    assert words in str(info.value)
    assert "top_kk" in str(info.value) or "top_kk" not in sampling


@pytest.mark.parametrize("top_p", [0.0, 1.5])
async def test_a_top_p_vllm_refuses_is_a_bad_request(ask: Ask, top_p: float) -> None:
    with pytest.raises(VLLMValidationError, match=rf"top_p must be in \(0, 1\], got {top_p}"):
        SamplingParams(top_p=top_p)
    b = backend()
    with pytest.raises(BackendHTTPError, match="top_p must be in") as info:
        await b.complete(ask("x", top_p=top_p))
    assert info.value.status == 400
    await b.aclose()


async def test_priority_is_passed_negated_and_only_under_the_priority_policy(ask: Ask) -> None:
    b = backend()
    await b.complete(ask("urgent", priority=12.4))
    assert engine_of(b).requests[-1]["priority"] == -12_400
    for priority in (0.3, 0.6):  # under a second apart: still ordered (vLLM: lower first)
        await b.complete(ask("short path", priority=priority))
    assert [r["priority"] for r in engine_of(b).requests[-2:]] == [-300, -600]
    fcfs = backend(scheduling_policy="fcfs", api_kwargs={"legacy_errors": True})
    await fcfs.complete(ask("any", priority=12.4))  # older releases refuse it under fcfs
    assert engine_of(fcfs).requests[-1]["priority"] == 0


async def test_stream_yields_text_and_times(ask: Ask) -> None:
    b = backend(api_kwargs={"step_s": 0.01, "tokens_per_step": 2})
    chunks = [c async for c in b.stream(ask("tell me a story", max_tokens=40))]
    final = chunks[-1].final
    assert final is not None
    assert "".join(c.text for c in chunks[:-1]) == final.text
    assert len(chunks) > 3
    assert final.ttft_s == pytest.approx(0.01, abs=0.005)
    assert final.latency_s > final.ttft_s


async def test_cancelling_a_call_aborts_the_request_at_the_engine(ask: Ask) -> None:
    b = backend(api_kwargs={"step_s": 0.05})
    with anyio.move_on_after(0.12):
        await b.complete(ask("long answer please", max_tokens=500, request_id="run/s/1"))
    engine = engine_of(b)
    (sent,) = engine.requests
    assert engine.aborted == [sent["request_id"]]
    assert sent["request_id"].startswith("run/s/1#")
    assert not engine.running


async def test_a_stream_adds_the_tokens_it_spends_to_the_requests_usage(ask: Ask) -> None:
    b = backend(api_kwargs={"step_s": 0.01, "tokens_per_step": 2})
    counted = Usage()
    seen: list[int] = []
    async for chunk in b.stream(ask("tell me a story", max_tokens=40, usage=counted)):
        if chunk.final is None:
            seen.append(counted.completion_tokens)
            assert counted.prompt_tokens > 0
        else:
            final = chunk.final
    assert seen == sorted(seen) and seen[0] == 2 and len(set(seen)) > 3  # grows as it goes
    assert (counted.prompt_tokens, counted.completion_tokens) == (final.prompt_tokens,
                                                                  final.completion_tokens)


async def test_a_cancelled_call_of_n_samples_keeps_every_samples_tokens(ask: Ask) -> None:
    b = backend(api_kwargs={"step_s": 0.05, "tokens_per_step": 2})
    counted = Usage()
    with anyio.move_on_after(0.12):  # two engine steps of 2 tokens, for each of 3 samples
        await b.complete(ask("long answers please", max_tokens=500, n=3, usage=counted,
                             temperature=0.9))
    engine = engine_of(b)
    assert engine.aborted and not engine.running
    assert counted.prompt_tokens == len(engine._tokenizer.encode(engine.requests[0]["prompt"]))
    assert counted.completion_tokens == 3 * 2 * 2


async def test_a_dead_engine_is_unavailable_and_a_pool_moves_on(ask: Ask, pool_config: Any
                                                                ) -> None:
    shared = SharedObjects()
    made: list[VLLMBackend] = []

    def make(config: ModelConfig) -> VLLMBackend:
        made.append(VLLMBackend(config, api=fake_vllm_api(step_s=0.01), shared=shared))
        return made[-1]

    pool = PoolBackend(pool_config([
        {"backend": "vllm", "model": MODEL, "options": {"gpu": 0}, "name": "gpu0"},
        {"backend": "vllm", "model": MODEL, "options": {"gpu": 1}, "name": "gpu1"}],
        routing="least_loaded"), resolve=lambda name: make)
    await pool.complete(ask("warm up", max_tokens=5))
    await pool.complete(ask("warm up", max_tokens=5))
    engine_of(made[0]).kill()
    assert not await made[0].health()
    with pytest.raises(BackendUnavailable, match="dead"):
        await made[0].complete(ask("x"))
    answers = [await pool.complete(ask(f"q{i}", max_tokens=10)) for i in range(4)]
    assert len(answers) == 4
    assert pool.stats()["gpu0"].ejections == 1
    await pool.aclose()


async def test_too_little_free_gpu_memory_at_start_is_a_clear_error(ask: Ask) -> None:
    b = backend(api_kwargs={"gpu_memory": 0.5}, gpu_memory_utilization=0.9)
    with pytest.raises(BackendError) as info:
        await b.complete(ask("x"))
    message = str(info.value)
    assert "could not start: not enough GPU memory" in message
    assert "gpu_memory_utilization=0.9" in message and f"model={MODEL!r}" in message
    assert "lower `gpu_memory_utilization`" in message
    assert "Traceback" not in message and "\n" not in message
    assert not await b.health()
    with pytest.raises(BackendError, match="could not start"):  # no second try per run
        await b.complete(ask("y"))


@pytest.mark.parametrize(("kind", "advice"), [
    ("cuda_oom", "lower `gpu_memory_utilization`, `max_model_len`"),
    ("free_memory", "lower `gpu_memory_utilization` below the free share"),
    ("cache_blocks", "pick a smaller (or quantised) model"),
    ("max_model_len", "lower `max_model_len`"),
    ("engine_core", "most often it is GPU memory"),
])
async def test_each_way_vllm_reports_lack_of_memory_at_start_is_recognised(
        ask: Ask, kind: str, advice: str) -> None:
    b = backend(api_kwargs={"start_error": kind}, max_model_len=32768,
                gpu_memory_utilization=0.85)
    with pytest.raises(BackendError) as info:
        await b.complete(ask("x"))
    message = str(info.value)
    _, vllm_says = START_ERRORS[kind]
    assert vllm_says in message  # vLLM's own words, then what to change
    assert "gpu_memory_utilization=0.85, max_model_len=32768" in message
    assert advice in message
    assert "\n" not in message


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a thread: the real clock
async def test_the_event_loop_runs_on_while_the_engine_starts(ask: Ask) -> None:
    b = backend(api_kwargs={"start_s": 0.5})  # the fake's start blocks its thread 0.5 s
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await anyio.sleep(0.05)
        before = ticks
        begun = anyio.current_time()
        await b.complete(ask("x", max_tokens=3))
        during = ticks - before
        assert anyio.current_time() - begun >= 0.5
        tg.cancel_scope.cancel()
    assert during >= 20  # about 50 ticks of 10 ms; none if the start blocked the loop


async def test_runs_starting_one_engine_at_once_share_it(ask: Ask) -> None:
    shared = SharedObjects()
    starts: list[AsyncEngineArgs] = []

    class Counting(AsyncLLM):
        @classmethod
        def from_engine_args(cls, engine_args: AsyncEngineArgs, **kwargs: Any) -> AsyncLLM:
            starts.append(engine_args)
            return AsyncLLM(engine_args)

    api = replace(fake_vllm_api(), async_llm=Counting, blocking_start=True)  # in a thread
    runs = [VLLMBackend(ModelConfig(backend="vllm", model=MODEL), api=api, shared=shared)
            for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for run in runs:
            tg.start_soon(run.complete, ask("x", max_tokens=3))
    assert len(starts) == 1
    assert engine_of(runs[0]) is engine_of(runs[1]) is engine_of(runs[2])
    await shared.aclose()


# -- the fake engine's fidelity to vLLM v1 ---------------------------------------------------
async def test_n_samples_stream_as_vllms_parallel_sampling_does() -> None:
    engine = AsyncLLM(AsyncEngineArgs(), tokens_per_step=2)
    outputs = [out async for out in engine.generate(
        "<|user|>\nthree stories", SamplingParams(n=3, temperature=0.9, max_tokens=60),
        "r1")]
    assert all(len(out.outputs) == 1 for out in outputs)  # the sample that progressed
    assert {out.outputs[0].index for out in outputs} == {0, 1, 2}
    assert [out.finished for out in outputs] == [False] * (len(outputs) - 1) + [True]
    finished = [out.outputs[0].index for out in outputs if out.outputs[0].finish_reason]
    assert sorted(finished) == [0, 1, 2]  # each finished sample is sent once
    assert not engine.running


async def test_max_tokens_none_runs_to_the_context_length() -> None:
    prompt = "<|user|>\ntell me everything\n"
    prompt_tokens = len(AsyncLLM().get_tokenizer().encode(prompt))
    # a context with room for 3 more tokens: the answer (9 tokens) is cut there
    engine = AsyncLLM(AsyncEngineArgs(max_model_len=prompt_tokens + 3), tokens_per_step=8)
    outputs = [out async for out in engine.generate(
        prompt, SamplingParams(max_tokens=None), "r1")]
    (last,) = outputs[-1].outputs
    assert (len(last.token_ids), last.finish_reason) == (3, "length")
    roomy = AsyncLLM(AsyncEngineArgs(), tokens_per_step=8)  # 8192 tokens of context
    outputs = [out async for out in roomy.generate(
        prompt, SamplingParams(max_tokens=None), "r2")]
    assert outputs[-1].outputs[0].finish_reason == "stop"


@pytest.mark.parametrize("legacy", [False, True], ids=["vllm>=0.27", "vllm<0.27"])
async def test_invalid_requests_are_bad_requests(ask: Ask, legacy: bool) -> None:
    # vLLM 0.27 and later: VLLMValidationError, a VLLMClientError and no ValueError;
    # before: ValueError. Either is the request's fault, never the engine's.
    with pytest.raises(VLLMValidationError, match="max_tokens must be at least 1, got 0"):
        SamplingParams(max_tokens=0)
    assert not issubclass(VLLMValidationError, ValueError)
    b = backend(max_model_len=16, api_kwargs={"legacy_errors": legacy})
    with pytest.raises(BackendHTTPError, match="max_tokens must be at least 1, got 0") as info:
        await b.complete(ask("x", max_tokens=0))
    assert info.value.status == 400
    with pytest.raises(BackendHTTPError, match="longer than the maximum model length of 16"):
        await b.complete(ask("a prompt far longer than sixteen tokens of context " * 3))


async def test_a_request_vllm_refuses_does_not_take_pool_engines_out(
        ask: Ask, pool_config: Any) -> None:
    made: list[VLLMBackend] = []

    def make(config: ModelConfig) -> VLLMBackend:
        made.append(VLLMBackend(config, api=fake_vllm_api(), shared=SharedObjects()))
        return made[-1]

    pool = PoolBackend(pool_config([
        {"backend": "vllm", "model": MODEL, "options": {"gpu": g, "max_model_len": 16},
         "name": f"gpu{g}"} for g in (0, 1)]), resolve=lambda name: make)
    with pytest.raises(BackendHTTPError, match="longer than the maximum model length") as info:
        await pool.complete(ask("a prompt far longer than sixteen tokens of context " * 3))
    assert info.value.status == 400
    assert sum(s.calls for s in pool.stats().values()) == 1  # not tried on the other engine
    assert all(m.down_since is None for m in pool.members)
    assert (await pool.complete(ask("short", max_tokens=3))).text
    await pool.aclose()


@pytest.mark.parametrize(("error", "status"), [
    (VLLMValidationError("Invalid grammar specification"), 400),
    (type("VLLMNotFoundError", (VLLMClientError,), {})("no adapter found"), 404),
    (type("QueueOverflowError", (type("GracefulHTTPError", (VLLMError,), {}),), {
        "http_status": 503})("The engine is currently busy"), 503),
])
async def test_vllms_request_errors_keep_their_http_status(ask: Ask, error: Exception,
                                                           status: int) -> None:
    b = backend()
    await b.complete(ask("warm up", max_tokens=3))
    engine_of(b).reject(error)
    with pytest.raises(BackendHTTPError, match=str(error)) as info:
        await b.complete(ask("x"))
    assert info.value.status == status
    engine_of(b).reject(None)
    wrapped = EngineGenerateError()  # older releases wrap what they do not let through
    wrapped.__cause__ = error
    engine_of(b).reject(wrapped)
    with pytest.raises(BackendHTTPError, match=str(error)) as info:
        await b.complete(ask("x"))
    assert info.value.status == status


async def test_a_vllm_without_structured_outputs_refuses_a_schema(ask: Ask) -> None:
    api = replace(fake_vllm_api(), structured_outputs=None, guided_decoding=None)
    b = VLLMBackend(ModelConfig(backend="vllm", model=MODEL), api=api, shared=SharedObjects())
    assert (await b.complete(ask("free text is fine", max_tokens=3))).text
    with pytest.raises(ConfigError, match=r"neither StructuredOutputsParams nor "
                                          r"GuidedDecodingParams.*output_schema"):
        await b.complete(ask("x", json_schema=SCHEMA))
    assert len(engine_of(b).requests) == 1  # the schema was not dropped silently


async def test_an_engine_error_of_a_request_names_its_cause(ask: Ask) -> None:
    b = backend()
    await b.complete(ask("warm up", max_tokens=3))
    engine_of(b).fail("detokenizer crashed")
    with pytest.raises(BackendError, match=r"failed the request: RuntimeError: detokenizer "
                                           "crashed") as info:
        await b.complete(ask("x"))
    assert type(info.value) is BackendError  # not a bad request, not a dead engine
    engine_of(b).fail(None)
    assert (await b.complete(ask("y", max_tokens=3))).text


async def test_a_rejected_request_is_a_bad_request(ask: Ask) -> None:
    # the engine was told fcfs behind the backend's back: older vLLMs refuse priorities
    # then; 0.33 serves the call first come first served
    b = backend(engine_args={"scheduling_policy": "fcfs"}, api_kwargs={"legacy_errors": True})
    with pytest.raises(BackendHTTPError, match="Priority scheduling is not enabled") as info:
        await b.complete(ask("x", priority=3))
    assert info.value.status == 400
    current = backend(engine_args={"scheduling_policy": "fcfs"})
    assert (await current.complete(ask("x", priority=3, max_tokens=3))).text


async def test_runs_with_the_same_engine_arguments_share_one_engine(ask: Ask) -> None:
    shared = SharedObjects()
    first, second = backend(shared), backend(shared)
    other_gpu = backend(shared, gpu=1)
    for b in (first, second, other_gpu):
        await b.complete(ask("x", max_tokens=3))
    assert engine_of(first) is engine_of(second)
    assert engine_of(first) is not engine_of(other_gpu)
    for b in (first, second, other_gpu):
        await b.aclose()
    assert not engine_of(first).shut_down  # kept loaded for the next run
    await shared.aclose()
    assert engine_of(first).shut_down


async def test_an_unknown_engine_argument_is_a_config_error(ask: Ask) -> None:
    b = backend(engine_args={"warp_drive": True})
    with pytest.raises(ConfigError, match="bad engine argument"):
        await b.complete(ask("x"))


@pytest.mark.skipif(not HAS_META, reason="LLMResponse has no `meta` field yet")
async def test_responses_record_decode_time(ask: Ask) -> None:
    b = backend(api_kwargs={"step_s": 0.01})
    meta = meta_of(await b.complete(ask("x", max_tokens=20, priority=2)))
    assert meta["decode_s"] > 0
    assert meta["engine_priority"] == -2000


async def test_a_workflow_step_with_an_output_schema() -> None:
    wf = Workflow("gpu", models={"default": {"backend": "vllm", "model": MODEL}})
    wf.register_backend("vllm", lambda cfg: VLLMBackend(cfg, api=fake_vllm_api(),
                                                        shared=SharedObjects()))
    wf.llm("count", prompt="How many?", output_schema=SCHEMA, max_tokens=20)
    result = await wf.run()
    assert result.ok, result.error
    assert isinstance(result.output["answer"], int)


# -- without vLLM or without a GPU ----------------------------------------------------------
def test_without_vllm_choosing_the_backend_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ConfigError, match=r"vLLM is not installed.*ponder\[gpu\]"):
        VLLMBackend(ModelConfig(backend="vllm", model=MODEL))


def test_without_a_gpu_choosing_the_backend_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    modules = {name: types.ModuleType(name) for name in (
        "vllm", "vllm.sampling_params", "vllm.engine", "vllm.engine.arg_utils", "vllm.v1",
        "vllm.v1.engine", "vllm.v1.engine.async_llm", "torch")}
    modules["vllm"].SamplingParams = object  # type: ignore[attr-defined]
    modules["vllm"].sampling_params = modules["vllm.sampling_params"]  # type: ignore[attr-defined]
    modules["vllm.engine.arg_utils"].AsyncEngineArgs = object  # type: ignore[attr-defined]
    modules["vllm.v1.engine.async_llm"].AsyncLLM = object  # type: ignore[attr-defined]
    modules["torch"].cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: False, device_count=lambda: 0)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        VLLMBackend(ModelConfig(backend="vllm", model=MODEL))


def test_a_model_is_required() -> None:
    with pytest.raises(ConfigError, match="set `model:`"):
        VLLMBackend(ModelConfig(backend="vllm"), api=fake_vllm_api())
