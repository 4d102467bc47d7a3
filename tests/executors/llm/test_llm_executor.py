"""LLMExecutor: messages, JSON output, schema repair, error mapping, cancellation."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from executors.llm import LLMExecutor, SimulatedBackend, extract_json
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    OutputSchemaError,
    StepError,
    StepTimeout,
    is_retryable,
)
from orchestrator.runtime.contracts import (
    Executor,
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Task,
)
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import LLMStep, ModelConfig

pytestmark = pytest.mark.anyio

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
}


class Recording:
    """Wraps a backend and keeps every request it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        response: LLMResponse = await self.inner.complete(request)
        return response

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        async for chunk in self.inner.stream(request):
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class Raising:
    """A backend whose every call raises ``exc``."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise self.exc

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        raise self.exc
        yield LLMChunk("")  # makes this an async generator

    async def aclose(self) -> None:
        pass


def simulated(**options: Any) -> tuple[ModelConfig, SimulatedBackend]:
    config = ModelConfig(backend="simulated", model="sim-1", options={"time_scale": 0, **options})
    return config, SimulatedBackend(config)


def task(step: LLMStep, prompt: str = "What is 6*7?", system: str | None = None) -> Task:
    inputs: dict[str, Any] = {"prompt": prompt}
    if system is not None:
        inputs["system"] = system
    return Task(run_id="run-1", step_id=step.id, kind="llm", step=step, inputs=inputs)


async def run(step: LLMStep, backend: Any, make_context: Any, config: ModelConfig | None = None,
              **task_fields: Any) -> Any:
    ctx = make_context({"default": backend}, {"default": config or ModelConfig()})
    return await LLMExecutor().execute(task(step, **task_fields), ctx)


def test_is_an_executor_and_found_by_entry_point() -> None:
    assert isinstance(LLMExecutor(), Executor)
    assert isinstance(Registry().executor("llm"), LLMExecutor)
    assert Registry().backend_factory("simulated") is SimulatedBackend


async def test_plain_text_output_and_meta(make_context: Any) -> None:
    config, backend = simulated(responses=[{"match": "6\\*7", "output": "  forty-two \n"}])
    step = LLMStep(id="s", prompt="unused", max_tokens=16, temperature=0.3)
    result = await run(step, backend, make_context, config)
    assert result.output == "forty-two"
    assert result.raw == "  forty-two \n"
    assert result.usage.completion_tokens == 16
    assert result.usage.prompt_tokens > 0
    assert result.meta == {
        "model": "sim-1", "backend": "simulated", "temperature": 0.3, "max_tokens": 16,
        "ttft_s": result.meta["ttft_s"], "latency_s": result.meta["latency_s"],
        "finish_reason": "stop", "schema_repairs_used": 0,
    }


async def test_messages_and_request_fields(make_context: Any) -> None:
    config, inner = simulated()
    backend = Recording(inner)
    step = LLMStep(id="s", prompt="p", max_tokens=5, stop=["\n"], seed=7)
    await run(step, backend, make_context, config, system="Be brief.")
    (request,) = backend.requests
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 6*7?"},
    ]
    assert (request.max_tokens, request.stop, request.seed) == (5, ["\n"], 7)
    assert request.request_id == "run-1/s/1"


async def test_top_p_reaches_every_request_and_the_meta(make_context: Any) -> None:
    """A repair re-asks with the step's nucleus sampling too; a step without `top_p`
    sends none and records none (see test_plain_text_output_and_meta)."""
    config, inner = simulated(responses=[{"match": ".", "sequence": ["nope", '{"answer": 4}']}])
    backend = Recording(inner)
    step = LLMStep(id="s", prompt="p", top_p=0.9, output_schema=ANSWER_SCHEMA)
    result = await run(step, backend, make_context, config)
    assert result.meta["schema_repairs_used"] == 1
    assert [r.top_p for r in backend.requests] == [0.9, 0.9]
    config, inner = simulated()
    backend = Recording(inner)
    result = await run(LLMStep(id="s", prompt="p", top_p=0.25), backend, make_context, config)
    assert result.meta["top_p"] == 0.25
    await run(LLMStep(id="s", prompt="p"), backend, make_context, config)
    assert [r.top_p for r in backend.requests] == [0.25, None]


async def test_schema_output_is_parsed(make_context: Any) -> None:
    config, backend = simulated()
    step = LLMStep(id="s", prompt="p", output_schema=ANSWER_SCHEMA)
    result = await run(step, backend, make_context, config)
    assert isinstance(result.output["answer"], int)
    assert json.loads(result.raw) == result.output


async def test_fenced_json_in_prose_is_found(make_context: Any) -> None:
    answer = 'Sure! Here it is:\n```json\n{"answer": 42}\n```\nAnything else?'
    config, backend = simulated(responses=[{"match": ".", "output": answer}])
    step = LLMStep(id="s", prompt="p", output_schema=ANSWER_SCHEMA)
    result = await run(step, backend, make_context, config)
    assert result.output == {"answer": 42}
    assert result.raw == answer


async def test_bad_then_good_is_repaired(make_context: Any) -> None:
    config, inner = simulated(responses=[
        {"match": ".", "sequence": ["I think it is 42.", '{"answer": "42"}', '{"answer": 42}']},
    ])
    backend = Recording(inner)
    step = LLMStep(id="s", prompt="p", output_schema=ANSWER_SCHEMA, schema_repairs=2)
    result = await run(step, backend, make_context, config)
    assert result.output == {"answer": 42}
    assert result.meta["schema_repairs_used"] == 2
    assert len(backend.requests) == 3
    assert result.usage.completion_tokens == 3 * step.max_tokens
    repair = backend.requests[2].messages
    assert repair[-2] == {"role": "assistant", "content": '{"answer": "42"}'}
    assert "'42' is not of type 'integer'" in repair[-1]["content"]
    assert "$.answer" in repair[-1]["content"]
    assert backend.requests[1].messages[-1]["content"].startswith(
        "Your previous answer is not valid: the answer holds no JSON value")


async def test_all_bad_raises_with_the_raw_output(make_context: Any) -> None:
    config, inner = simulated(responses=[{"match": ".", "sequence": ["nope", '{"answer": null}']}])
    backend = Recording(inner)
    step = LLMStep(id="s", prompt="p", output_schema=ANSWER_SCHEMA, schema_repairs=2)
    with pytest.raises(OutputSchemaError) as info:
        await run(step, backend, make_context, config)
    assert info.value.raw_output == '{"answer": null}'
    assert info.value.step_id == "s"
    assert "after 2 repair(s)" in str(info.value)
    assert not is_retryable(info.value)
    assert len(backend.requests) == 3


async def test_no_repairs_allowed(make_context: Any) -> None:
    config, inner = simulated(responses=[{"match": ".", "output": "[]"}])
    backend = Recording(inner)
    step = LLMStep(id="s", prompt="p", output_schema=ANSWER_SCHEMA, schema_repairs=0)
    with pytest.raises(OutputSchemaError, match="not of type 'object'"):
        await run(step, backend, make_context, config)
    assert len(backend.requests) == 1


async def test_invalid_schema_is_a_config_error(make_context: Any) -> None:
    config, backend = simulated(responses=[{"match": ".", "output": "{}"}])
    step = LLMStep(id="s", prompt="p", output_schema={"type": "no-such-type"})
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        await run(step, backend, make_context, config)


@pytest.mark.parametrize(("schema", "problem"), [
    ({"type": "no-such-type"}, "output_schema is not a valid JSON Schema: 'no-such-type'"),
    ({"type": "string", "pattern": "^(a|b"}, "'^(a|b' is not a 'regex'"),
    # was jsonschema's own exception, after the call
    ({"$ref": "#/$defs/missing"}, "output_schema has a $ref that cannot be resolved"),
])
async def test_an_invalid_schema_fails_before_any_call(make_context: Any, schema: Any,
                                                       problem: str) -> None:
    """No token is spent, and the message is the schema's, not a backend's (a grammar
    llama.cpp cannot build, the simulated engine's generator)."""
    config, inner = simulated()
    backend = Recording(inner)
    step = LLMStep(id="s", prompt="p", output_schema=schema)
    with pytest.raises(ConfigError) as info:
        await run(step, backend, make_context, config)
    assert problem in str(info.value)
    assert backend.requests == []


async def test_an_answer_without_json_at_the_token_limit_says_it_may_be_cut_off(
        make_context: Any) -> None:
    config, _ = simulated(responses=[{"match": ".", "output": '{"answer": 4'}])

    class StopsAtTheLimit(SimulatedBackend):
        """Its answers stopped at max_tokens, as a real server's cut JSON does."""

        def _plan(self, request: Any) -> Any:
            return dataclasses.replace(super()._plan(request), finish_reason="length")

    step = LLMStep(id="s", prompt="p", output_schema=ANSWER_SCHEMA, max_tokens=3,
                   schema_repairs=0)
    with pytest.raises(OutputSchemaError) as info:
        await run(step, StopsAtTheLimit(config), make_context, config)
    assert str(info.value).endswith(
        "the answer holds no JSON value (it stopped at the token limit, max_tokens=3: it "
        "may have been cut off)")


async def test_an_answer_without_json_that_stopped_says_nothing_of_the_limit(
        make_context: Any) -> None:
    config, backend = simulated(output_tokens="text",
                                responses=[{"match": ".", "output": "no idea"}])
    step = LLMStep(id="s", prompt="p", output_schema=ANSWER_SCHEMA, schema_repairs=0)
    with pytest.raises(OutputSchemaError) as info:
        await run(step, backend, make_context, config)
    assert str(info.value).endswith("the answer holds no JSON value")


@pytest.mark.parametrize(
    ("raised", "expected", "retryable"),
    [
        (ValueError("Requested tokens exceed context window"), BackendError, False),
        (ConnectionRefusedError("refused"), BackendUnavailable, True),
        (TimeoutError("slow"), StepTimeout, True),
        (BackendHTTPError("boom", status=502), BackendHTTPError, True),
    ],
)
async def test_backend_exceptions_become_step_errors(
    make_context: Any, raised: Exception, expected: type[StepError], retryable: bool
) -> None:
    step = LLMStep(id="s", prompt="p")
    with pytest.raises(expected) as info:
        await run(step, Raising(raised), make_context)
    assert info.value.step_id == "s"
    assert is_retryable(info.value) is retryable


async def test_missing_prompt_input(make_context: Any) -> None:
    config, backend = simulated()
    step = LLMStep(id="s", prompt="p")
    ctx = make_context({"default": backend}, {"default": config})
    bad = Task(run_id="r", step_id="s", kind="llm", step=step, inputs={})
    with pytest.raises(StepError, match="no rendered `prompt`"):
        await LLMExecutor().execute(bad, ctx)


async def test_cancellation_reaches_the_engine(make_context: Any) -> None:
    config = ModelConfig(backend="simulated", options={"decode_s_per_token": 0.01})
    backend = SimulatedBackend(config)
    step = LLMStep(id="s", prompt="p", max_tokens=200)
    with anyio.move_on_after(0.1):
        await run(step, backend, make_context, config)
    assert backend.stats.cancelled == 1
    assert backend.stats.completion_tokens < 50


def _cancellable(ctx: Any, step_id: str) -> dict[str, Any]:
    """Make ``step_id`` a cancellable step of a live graph; returns what gets noted."""
    noted: dict[str, Any] = {}
    ctx.scheduler = SimpleNamespace(plans={step_id: SimpleNamespace(cancellable=True)})
    ctx.note_usage = noted.__setitem__
    return noted


async def test_a_cancelled_step_notes_the_engines_own_count(make_context: Any) -> None:
    """Streamed with the backend's live count: exactly what the engine spent, the piece
    in progress when it was cancelled included."""
    config = ModelConfig(backend="simulated", options={"decode_s_per_token": 0.002,
                                                       "output_tokens": "max"})
    backend = Recording(SimulatedBackend(config))
    ctx = make_context({"default": backend}, {"default": config})
    noted = _cancellable(ctx, "s")
    step = LLMStep(id="s", prompt="p", max_tokens=400)  # 0.8 s; 8 pieces of 50 tokens
    with anyio.move_on_after(0.25):
        await LLMExecutor().execute(task(step), ctx)
    stats = backend.inner.stats
    assert stats.cancelled == 1
    assert not backend.requests  # streamed, not `complete`
    used = noted["s"]
    assert 0 < used.completion_tokens < 400
    assert (used.prompt_tokens, used.completion_tokens) == (stats.prompt_tokens,
                                                            stats.completion_tokens)


async def test_without_a_count_the_chunks_received_are_estimated(make_context: Any) -> None:
    class Words:
        """Streams one four-letter word per 50 ms; its chunks carry no count."""

        sent = 0

        async def complete(self, request: LLMRequest) -> LLMResponse:
            raise AssertionError("a cancellable step is streamed")

        async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
            for _ in range(100):
                await anyio.sleep(0.05)
                self.sent += 1
                yield LLMChunk("word")

        async def aclose(self) -> None:
            pass

    words = Words()
    ctx = make_context({"default": words}, {"default": ModelConfig()})
    noted = _cancellable(ctx, "s")
    step = LLMStep(id="s", prompt="x" * 40)
    with anyio.move_on_after(0.33):
        await LLMExecutor().execute(task(step, prompt="x" * 40), ctx)
    used = noted["s"]
    assert used.prompt_tokens == 10  # 40 characters, once the first chunk came
    assert used.completion_tokens == words.sent > 0  # one token per word received


async def test_a_step_nobody_cancels_is_not_streamed(make_context: Any) -> None:
    config, inner = simulated(output_tokens="text")
    backend = Recording(inner)
    ctx = make_context({"default": backend}, {"default": config})
    result = await LLMExecutor().execute(task(LLMStep(id="s", prompt="p")), ctx)
    assert len(backend.requests) == 1  # `complete`
    assert result.usage.total == inner.stats.prompt_tokens + inner.stats.completion_tokens


async def test_a_stream_without_a_final_chunk_is_a_backend_error(make_context: Any) -> None:
    class Endless:
        async def complete(self, request: LLMRequest) -> LLMResponse:
            raise AssertionError

        async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
            yield LLMChunk("cut")

        async def aclose(self) -> None:
            pass

    ctx = make_context({"default": Endless()}, {"default": ModelConfig()})
    noted = _cancellable(ctx, "s")
    with pytest.raises(BackendError, match="without a final chunk"):
        await LLMExecutor().execute(task(LLMStep(id="s", prompt="p")), ctx)
    assert noted["s"].completion_tokens == 1  # what it used is noted for step_failed


def test_estimate() -> None:
    assert LLMExecutor().estimate_s(LLMStep(id="s", prompt="p", max_tokens=100), None) == 2.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]\n", [1, 2]),
        ("```json\n{\"a\": [1]}\n```", {"a": [1]}),
        ("```\n{\"a\": 2}", {"a": 2}),  # an unclosed fence (cut by max_tokens)
        ('The result is {"a": {"b": "}"}} as asked.', {"a": {"b": "}"}}),
        ("Use [brackets] or {\"ok\": true}", {"ok": True}),
        ("42", 42),
    ],
)
def test_extract_json(text: str, value: Any) -> None:
    assert extract_json(text) == value


def test_extract_json_without_json() -> None:
    with pytest.raises(ValueError, match="no JSON value"):
        extract_json("no structured data {here")
