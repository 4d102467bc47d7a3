"""The discrete-event engine model: timing, batching, prefix cache, KV preemption, priority."""

from __future__ import annotations

import pytest

from executors.engines import EngineModel, EngineParams
from executors.engines._model import PromptTooLong, SimRequest, block_hashes


def run_all(model: EngineModel, start: float = 0.0) -> float:
    """Drive the model until it is idle; returns the end time."""
    now = start
    while model.has_work():
        batch = model.schedule()
        assert not batch.empty
        now += batch.duration_s
        model.finish(batch, now)
    return now


def request(rid: str, prompt: int = 100, output: int = 10, text: str = "", **kw: object
            ) -> SimRequest:
    params = EngineParams()
    return SimRequest(rid, prompt, output, block_hashes=block_hashes(text, params), **kw)  # type: ignore[arg-type]


def test_one_request_costs_prefill_plus_one_decode_step_per_token() -> None:
    p = EngineParams()
    model = EngineModel(p)
    req = request("a", prompt=1000, output=101)
    model.add(req, 0.0)
    end = run_all(model)
    prefill = (p.decode_base_s + p.prefill_per_token_s * 1000
               + p.prefill_attention_s * 1000 * 500)  # 1000 queries, 500 keys each on average
    assert req.first_token_at == pytest.approx(prefill)
    step = p.decode_base_s + p.decode_per_seq_s + p.decode_per_context_token_s * 1050
    assert end - prefill == pytest.approx(100 * step, rel=0.01)
    assert model.counters.decode_tokens == 101
    assert model.counters.finished == 1


def test_a_suffix_after_a_cached_prefix_pays_attention_to_the_prefix() -> None:
    """512 new tokens after 15,872 cached ones read the whole prefix: on an H100 that
    is 44 ms against 16 ms for a lone 512-token prompt (docs/engines.md)."""
    p = EngineParams()
    prefix = "p" * (15_872 * 4)
    warm = EngineModel(p)
    warm.add(request("a", prompt=15_872, output=1, text=prefix), 0.0)
    start = run_all(warm)
    suffix = request("b", prompt=15_872 + 512, output=1, text=prefix + "s" * 2048)
    warm.add(suffix, start)
    run_all(warm, start)
    assert suffix.cached_tokens == 15_872
    after_prefix = suffix.first_token_at - start  # type: ignore[operator]
    expected = (p.decode_base_s + p.prefill_per_token_s * 512
                + p.prefill_attention_s * 512 * (15_872 + 256))
    assert after_prefix == pytest.approx(expected)
    lone = EngineModel(p)
    alone = request("c", prompt=512, output=1, text="s" * 2048)
    lone.add(alone, 0.0)
    run_all(lone)
    assert after_prefix > 2 * alone.first_token_at  # type: ignore[operator]


def test_batching_makes_two_requests_cheaper_than_two_in_a_row() -> None:
    alone = EngineModel()
    alone.add(request("a", output=200), 0.0)
    single = run_all(alone)
    both = EngineModel()
    both.add(request("a", output=200), 0.0)
    both.add(request("b", output=200), 0.0)
    assert run_all(both) < 1.1 * single


def test_a_shared_prefix_is_computed_once() -> None:
    prefix = "p" * 4000  # 1000 tokens
    model = EngineModel()
    first = request("a", prompt=1050, text=prefix + "x" * 200)
    model.add(first, 0.0)
    run_all(model)
    second = request("b", prompt=1050, text=prefix + "y" * 200)
    model.add(second, 0.0)
    run_all(model)
    assert first.cached_tokens == 0
    assert second.cached_tokens == 992  # 62 full blocks of 16 tokens
    assert model.counters.prefix_hit_rate == pytest.approx(992 / 2100)


def test_prefix_caching_can_be_switched_off() -> None:
    model = EngineModel(EngineParams(enable_prefix_caching=False))
    for rid in "ab":
        model.add(request(rid, prompt=1000, text="p" * 4000), 0.0)
        run_all(model)
    assert model.counters.cached_tokens == 0


def test_a_full_kv_cache_preempts_and_everything_still_finishes() -> None:
    model = EngineModel(EngineParams(kv_blocks=40, block_size=16))
    for i in range(4):
        model.add(request(f"r{i}", prompt=64, output=200), 0.0)
    run_all(model)
    assert model.counters.preemptions > 0
    assert model.counters.finished == 4
    assert model.free_blocks + model.cached_blocks == 40


def test_priority_policy_serves_the_urgent_request_first() -> None:
    model = EngineModel(EngineParams(max_num_seqs=1))
    low = request("low", priority=1.0)
    high = request("high", priority=5.0)
    model.add(low, 0.0)
    model.add(high, 0.0)
    run_all(model)
    assert high.finished_at is not None and low.finished_at is not None
    assert high.finished_at < low.finished_at


def test_fcfs_policy_ignores_priority() -> None:
    model = EngineModel(EngineParams(max_num_seqs=1, policy="fcfs"))
    low = request("low", priority=1.0)
    high = request("high", priority=5.0)
    model.add(low, 0.0)
    model.add(high, 0.0)
    run_all(model)
    assert low.finished_at < high.finished_at  # type: ignore[operator]


def test_chunked_prefill_respects_the_token_budget() -> None:
    model = EngineModel(EngineParams(max_num_batched_tokens=512))
    model.add(request("a", prompt=2000, output=1), 0.0)
    batch = model.schedule()
    assert sum(chunk for _, chunk in batch.prefills) == 512


def test_requests_that_can_never_fit_are_refused() -> None:
    model = EngineModel(EngineParams(max_model_len=1000, kv_blocks=10))
    with pytest.raises(PromptTooLong, match="max_model_len"):
        model.add(request("a", prompt=990, output=20), 0.0)
    with pytest.raises(PromptTooLong, match="KV blocks"):
        model.add(request("b", prompt=500, output=20), 0.0)


def test_abort_releases_blocks() -> None:
    model = EngineModel(EngineParams(kv_blocks=100))
    model.add(request("a", prompt=320, output=50), 0.0)
    model.finish(model.schedule(), 0.1)
    assert model.free_blocks < 100
    model.abort("a")
    assert not model.has_work()
    assert model.free_blocks + model.cached_blocks == 100
    assert model.counters.aborted == 1


def test_a_full_kv_cache_preempts_the_least_urgent_request() -> None:
    # 2 x (4 prompt + 13 output blocks) > 30 blocks: one of the two must give way,
    # and under the priority policy it is the one with the lower priority (as vLLM's)
    model = EngineModel(EngineParams(kv_blocks=30, block_size=16))
    low = request("low", prompt=64, output=200, priority=1.0)
    high = request("high", prompt=64, output=200, priority=5.0)
    model.add(low, 0.0)
    model.add(high, 0.0)
    run_all(model)
    assert high.preemptions == 0
    assert low.preemptions > 0
    assert high.finished_at is not None and low.finished_at is not None
    assert high.finished_at < low.finished_at
