"""The simulated engine: determinism, schema outputs, timing model, capacity, cancellation."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator

from executors.llm import SimulatedBackend
from orchestrator.errors import BackendHTTPError, ConfigError, is_retryable
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, LLMResponse, approx_tokens
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio

FAST = {"time_scale": 0}


def backend(**options: Any) -> SimulatedBackend:
    return SimulatedBackend(ModelConfig(backend="simulated", options=options))


def ask(prompt: str, **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": prompt}], **fields)


async def test_is_an_llm_backend() -> None:
    assert isinstance(backend(**FAST), LLMBackend)


async def test_same_options_same_outputs() -> None:
    first = await backend(**FAST).complete(ask("What is 2+2?", max_tokens=32))
    second = await backend(**FAST).complete(ask("What is 2+2?", max_tokens=32))
    other_seed = await backend(seed=1, **FAST).complete(ask("What is 2+2?", max_tokens=32))
    assert first.text == second.text
    assert first.text != other_seed.text
    assert first.text


async def test_samples_differ_only_above_temperature_zero() -> None:
    sim = backend(**FAST)
    greedy = await sim.complete(ask("name a colour", n=3, temperature=0))
    sampled = await sim.complete(ask("name a colour", n=3, temperature=0.8))
    assert len(set(greedy.texts)) == 1
    assert len(set(sampled.texts)) == 3
    assert sampled.text == sampled.texts[0]


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]},
    {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "verdict": {"enum": ["yes", "no"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["steps", "verdict", "score"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 3},
    {"const": "fixed"},
    {
        "$defs": {"node": {"type": "object", "properties": {"id": {"type": "string",
                                                                    "minLength": 3}},
                           "required": ["id"]}},
        "type": "object",
        "properties": {"nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["nodes"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
async def test_json_schema_outputs_are_valid(schema: dict[str, Any]) -> None:
    sim = backend(**FAST)
    for i in range(5):
        response = await sim.complete(ask(f"question {i}", json_schema=schema))
        Draft202012Validator(schema).validate(json.loads(response.text))


async def test_latency_follows_the_model() -> None:
    options = {"prefill_s_per_token": 0.001, "decode_s_per_token": 0.01, "batch_slowdown": 0}
    prompt = "x" * 400  # 100 tokens: 0.1 s of prefill
    response = await backend(**options).complete(ask(prompt, max_tokens=10))  # 0.1 s of decode
    assert response.prompt_tokens == 100
    assert response.completion_tokens == 10
    assert 0.19 <= response.latency_s < 0.35
    assert response.ttft_s is not None and 0.1 <= response.ttft_s < response.latency_s
    halved = await backend(time_scale=0.5, **options).complete(ask(prompt, max_tokens=10))
    assert 0.095 <= halved.latency_s < 0.2


async def test_time_scale_zero_never_sleeps() -> None:
    with anyio.fail_after(1):
        response = await backend(**FAST).complete(ask("x" * 4000, max_tokens=100_000))
    assert response.completion_tokens == 100_000


async def test_capacity_limits_concurrent_sequences() -> None:
    sim = backend(capacity=2, decode_s_per_token=0.01, batch_slowdown=0)
    responses: list[LLMResponse] = []

    async def one(i: int) -> None:
        responses.append(await sim.complete(ask(f"q{i}", max_tokens=10)))

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(one, i)
    elapsed = anyio.current_time() - start
    assert sim.stats.max_active == 2
    assert sim.default_concurrency == 2
    assert 0.2 <= elapsed < 0.4  # two waves of 0.1 s
    assert sorted(r.latency_s for r in responses)[-1] >= 0.2  # the waiting ones count their wait


async def test_concurrent_sequences_slow_each_other_down() -> None:
    options = {"decode_s_per_token": 0.01, "prefill_s_per_token": 0.001, "batch_slowdown": 1.0}
    alone = await backend(**options).complete(ask("abcd", max_tokens=10))
    sim = backend(**options)
    together: list[LLMResponse] = []

    async def one(i: int) -> None:
        together.append(await sim.complete(ask(f"abc{i}", max_tokens=10)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, 1)
        tg.start_soon(one, 2)
    decode_alone = alone.latency_s
    assert all(r.latency_s > 1.6 * decode_alone for r in together)


async def test_cancellation_stops_and_counts_partial_tokens() -> None:
    sim = backend(decode_s_per_token=0.01, prefill_s_per_token=0)
    start = anyio.current_time()
    with anyio.move_on_after(0.3):
        await sim.complete(ask("long", max_tokens=100))  # 1 s if left alone
    assert anyio.current_time() - start < 0.5
    assert sim.stats.cancelled == 1
    assert sim.stats.completed == 0
    assert 15 <= sim.stats.completion_tokens <= 40
    # The slot is free again.
    with anyio.fail_after(1):
        await sim.complete(ask("short", max_tokens=2))
    assert sim.stats.completed == 1


async def test_abandoned_stream_counts_as_cancelled_and_frees_its_slot() -> None:
    sim = backend(capacity=1, decode_s_per_token=0.001)
    async with aclosing(sim.stream(ask("hello", max_tokens=80))) as chunks:
        async for _ in chunks:
            break
    assert sim.stats.cancelled == 1
    assert 0 < sim.stats.completion_tokens < 80
    with anyio.fail_after(1):
        await sim.complete(ask("again", max_tokens=2))


async def test_stream_yields_pieces_then_final() -> None:
    sim = backend(decode_s_per_token=0.002)
    pieces: list[str] = []
    times: list[float] = []
    final = None
    async for chunk in sim.stream(ask("tell me", max_tokens=40, temperature=0)):
        if chunk.final is not None:
            final = chunk.final
        else:
            pieces.append(chunk.text)
            times.append(anyio.current_time())
    assert final is not None
    assert len(pieces) > 1
    assert "".join(pieces) == final.text
    assert times[-1] - times[0] > 0.03  # spread over the decode time (80 ms in all)


async def test_scripted_responses() -> None:
    sim = backend(
        responses=[
            {"match": r"capital of France", "output": "Paris"},
            {"match": r"numbers", "output": {"values": [1, 2]}},
            {"match": r"retry", "sequence": ["first", {"second": True}]},
            {"match": r"France", "output": "never reached: the first match wins"},
        ],
        output_tokens="text",
        **FAST,
    )
    assert (await sim.complete(ask("What is the capital of France?"))).text == "Paris"
    assert json.loads((await sim.complete(ask("give numbers"))).text) == {"values": [1, 2]}
    texts = [(await sim.complete(ask("retry please"))).text for _ in range(3)]
    assert texts == ["first", '{"second": true}', '{"second": true}']
    unmatched = await sim.complete(ask("something else"))
    assert unmatched.text not in {"Paris", "first"}


async def test_rules_match_the_last_user_message() -> None:
    sim = backend(responses=[{"match": "^fix it$", "output": "fixed"}], **FAST)
    request = LLMRequest(messages=[
        {"role": "system", "content": "fix it"},
        {"role": "user", "content": "fix it"},
        {"role": "assistant", "content": "no"},
        {"role": "user", "content": "something"},
    ])
    assert (await sim.complete(request)).text != "fixed"
    request.messages.append({"role": "user", "content": "fix it"})
    assert (await sim.complete(request)).text == "fixed"


async def test_output_tokens_text_counts_the_text() -> None:
    sim = backend(responses=[{"match": ".", "output": "x" * 40}], output_tokens="text", **FAST)
    response = await sim.complete(ask("anything", max_tokens=100))
    assert response.completion_tokens == approx_tokens("x" * 40) == 10
    assert response.finish_reason == "stop"
    full = await backend(**FAST).complete(ask("anything", max_tokens=100))
    assert full.completion_tokens == 100
    # "max" decodes max_tokens' worth of time and tokens, but its text is whole: only a
    # text cut to fit stopped at max_tokens (every simulated answer was said to be cut)
    assert full.finish_reason == "stop"
    cut = await backend(responses=[{"match": ".", "output": "x" * 40}], **FAST).complete(
        ask("anything", max_tokens=5))
    assert (cut.text, cut.finish_reason) == ("x" * 20, "length")


async def test_injected_failures_are_retryable_and_deterministic() -> None:
    with pytest.raises(BackendHTTPError) as info:
        await backend(fail_rate=1.0, **FAST).complete(ask("hi"))
    assert info.value.status == 503
    assert is_retryable(info.value)

    async def outcomes() -> list[bool]:
        sim = backend(fail_rate=0.5, **FAST)
        out = []
        for i in range(20):
            try:
                await sim.complete(ask(f"q{i % 5}"))
                out.append(True)
            except BackendHTTPError:
                out.append(False)
        return out

    first, second = await outcomes(), await outcomes()
    assert first == second
    assert 0 < sum(first) < 20


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"capacty": 2}, "capacty"),
        ({"capacity": 0}, "capacity: Input should be greater than or equal to 1 (got 0)"),
        ({"output_tokens": "some"}, "output_tokens: Input should be 'max' or 'text' "
                                    "(got 'some')"),
        ({"responses": [{"match": "(", "output": "x"}]}, "not a regular expression"),
        ({"responses": [{"match": "a"}]}, "exactly one of"),
        # an infinite or overflowing delay parked every request for good
        ({"time_scale": float("inf")}, "time_scale: Input should be less than or equal to "
                                       "1000 (got inf)"),
        ({"decode_s_per_token": 1e300}, "decode_s_per_token: Input should be less than or "
                                        "equal to 60 (got 1e+300)"),
        ({"prefill_s_per_token": float("inf")}, "prefill_s_per_token: Input should be less "
                                                "than or equal to 60 (got inf)"),
        ({"batch_slowdown": float("inf")}, "batch_slowdown: Input should be less than or "
                                           "equal to 100 (got inf)"),
    ],
)
async def test_bad_options_are_config_errors_naming_the_key(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match="simulated backend") as info:
        backend(**options)
    assert named in str(info.value)


# -- prefix caching ------------------------------------------------------------------------
SYSTEM = "You are a careful planner. " * 150  # about 1,000 tokens shared by every turn


def turn(history: str) -> LLMRequest:
    return LLMRequest(messages=[{"role": "system", "content": SYSTEM},
                                {"role": "user", "content": history}], max_tokens=4)


def test_a_cached_prefix_is_not_prefilled_again() -> None:
    from executors.engines import run_virtual

    async def main() -> list[tuple[float, int]]:
        b = backend(prefix_caching=True, prefill_s_per_token=0.001, decode_s_per_token=0.0)
        out = []
        for history in ("Question: a", "Question: a\nObservation: 1", "Something else"):
            r = await b.complete(turn(history))
            out.append((r.latency_s, b.stats.cached_prompt_tokens))
        return out

    (first, none), (second, cached), (third, more) = run_virtual(main)
    assert none == 0
    assert first == pytest.approx(0.001 * approx_tokens(SYSTEM + "Question: a"), abs=0.003)
    assert cached >= approx_tokens(SYSTEM) - 16  # all full blocks of the shared part
    assert second < 0.05 * first  # only the new tail is computed
    assert more - cached >= approx_tokens(SYSTEM) - 16 and third < 0.05 * first


async def test_usage_counts_every_prompt_token_and_caching_is_off_by_default() -> None:
    plain, cached = backend(**FAST), backend(prefix_caching=True, **FAST)
    for b in (plain, cached):
        for _ in range(2):
            r = await b.complete(turn("Question: a"))
            assert r.prompt_tokens == approx_tokens(SYSTEM) + approx_tokens("Question: a")
    assert plain.prefix_cache is None and plain.stats.cached_prompt_tokens == 0
    assert cached.stats.cached_prompt_tokens > 0
    assert cached.stats.prompt_tokens == plain.stats.prompt_tokens


async def test_backends_can_share_one_cache_and_it_evicts_least_recently_used() -> None:
    first, second = backend(prefix_caching=True, **FAST), backend(prefix_caching=True, **FAST)
    second.prefix_cache = first.prefix_cache
    await first.complete(turn("Question: a"))
    await second.complete(turn("Question: b"))
    assert second.stats.cached_prompt_tokens >= approx_tokens(SYSTEM) - 16

    small = backend(prefix_caching=True, prefix_cache_blocks=8, **FAST)
    await small.complete(turn("Question: a"))  # ~63 blocks: only the last 8 stay
    await small.complete(turn("Question: a"))
    assert small.stats.cached_prompt_tokens == 0  # the leading blocks were evicted


async def test_prefix_cache_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="prefix_cache_blocks"):
        backend(prefix_caching=True, prefix_cache_blocks=0)


@pytest.mark.parametrize(("schema", "named"), [
    ({"type": "array", "minItems": 10**9}, "minItems 1000000000"),  # hung the event loop
    ({"type": "string", "minLength": 10**9}, "minLength 1000000000"),
    ({"type": "object", "minProperties": 10**9}, "minProperties 1000000000"),
    ({"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]},
     "nests deeper than 64"),  # was a RecursionError
    ({"type": "string", "pattern": "^(a|b"}, "error: missing )"),  # was re.error, raw
])
async def test_a_schema_without_a_value_it_can_write_is_a_config_error(
        schema: dict[str, Any], named: str) -> None:
    with anyio.fail_after(10):
        with pytest.raises(ConfigError, match="simulated backend: cannot satisfy the schema: "
                           ) as info:
            await backend().complete(LLMRequest(messages=[{"role": "user", "content": "x"}],
                                                json_schema=schema))
    assert named in str(info.value)
