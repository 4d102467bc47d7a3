"""adaptive_vote over a map votes on at most `max_n` items, as over samples: it read on
past them when they left its rule undecided (the items a map starts are not its to
start), so a map of 6 items under max_n 3 whose first three answers differ was voted on 5
of them."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_adaptive_vote_over_a_map_stops_at_max_n(kit: Any) -> None:
    answers = {0: 1, 1: 2, 2: 3, 3: 9, 4: 9, 5: 9}
    fake = kit.FakeBackend(lambda prompt, k: kit.Reply(
        f"answer {answers[int(prompt.split()[-1])]}", 0.01 * int(prompt.split()[-1])))
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": list(range(6)), "concurrency": 2,
         "step": {"kind": "llm", "prompt": "item {{ item }}"}},
        {"id": "j", "kind": "join", "of": "m", "reducer": "adaptive_vote", "max_n": 3,
         "min_n": 3, "stop_rule": "share", "confidence": 0.9, "extract": r"answer (\d+)",
         "normalize": ["number"]}]), fake=fake)
    assert r.result.ok, r.result.error
    meta = r.step("j").meta
    # the vote of items 0 to 2, a tie that goes to the first (tie_break); 3 to 5 say 9
    assert r.step("j").output == 1
    assert meta["votes"] == {"1": 1, "2": 1, "3": 1} and meta["valid"] == 3
    assert meta["fanout"]["stopped"] == "max_n" and meta["fanout"]["decided_on"] == 3
    assert len(fake.requests) < 6  # the items past max_n were cancelled or never asked


async def test_a_map_within_max_n_is_voted_whole(kit: Any) -> None:
    fake = kit.FakeBackend(lambda prompt, k: kit.Reply(f"answer {prompt.split()[-1]}"))
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": [4, 5, 6],
         "step": {"kind": "llm", "prompt": "item {{ item }}"}},
        {"id": "j", "kind": "join", "of": "m", "reducer": "adaptive_vote", "max_n": 3,
         "min_n": 3, "extract": r"answer (\d+)", "normalize": ["number"]}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.step("j").output == 4 and r.step("j").meta["valid"] == 3
