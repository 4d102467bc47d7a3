"""A request of n samples that is preempted comes back with every sample's KV: it holds the
cache it held before, and recomputes each sample's tokens."""

from __future__ import annotations

from executors.engines import EngineModel, EngineParams
from executors.engines._model import SimRequest

BLOCK = 16


def held(request: SimRequest) -> int:
    return request.private_blocks + len(request.hashes_held)


def needed(request: SimRequest) -> int:
    """The blocks a decoding request of n samples holds: its prompt's, and n for every
    ``block_size`` tokens each sample has decoded past the first."""
    grown = (request.generated - 1) // BLOCK if request.generated else 0
    return -(-request.prompt_tokens // BLOCK) + request.n * grown


def test_a_preempted_request_of_n_samples_holds_each_samples_blocks_again() -> None:
    # each comes to hold 2 + 4 x 3 = 14 of 24 blocks: the less urgent one is preempted
    model = EngineModel(EngineParams(kv_blocks=24, block_size=BLOCK,
                                     enable_prefix_caching=False))
    high = SimRequest("high", 32, 64, n=4, priority=5.0)
    low = SimRequest("low", 32, 64, n=4, priority=1.0)
    model.add(high, 0.0)
    model.add(low, 0.0)
    now, checked = 0.0, 0
    while model.has_work():
        batch = model.schedule()
        assert not batch.empty
        now += batch.duration_s
        model.finish(batch, now)
        for request in model.running:
            if request.computed >= request.target and request.preemptions:
                assert held(request) >= needed(request), (request.request_id,
                                                          request.generated)
                checked += 1
        assert model.free_blocks >= 0
    assert low.preemptions > 0 and checked > 0
    assert model.counters.finished == 2
    assert model.free_blocks + model.cached_blocks == 24


def test_it_recomputes_every_samples_tokens() -> None:
    model = EngineModel(EngineParams(kv_blocks=24, block_size=BLOCK,
                                     enable_prefix_caching=False))
    high = SimRequest("high", 32, 64, n=4, priority=5.0)
    low = SimRequest("low", 32, 64, n=4, priority=1.0)
    model.add(high, 0.0)
    model.add(low, 0.0)
    generated_when_preempted = []
    now = 0.0
    while model.has_work():
        before = low.preemptions
        batch = model.schedule()
        if low.preemptions > before:
            generated_when_preempted.append(low.generated)
        now += batch.duration_s
        model.finish(batch, now)
    recomputed = sum(32 + 4 * g for g in generated_when_preempted)
    assert generated_when_preempted
    assert model.counters.prefill_tokens == 2 * 32 + recomputed
