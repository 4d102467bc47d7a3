"""first_finish with `first: m` records its winners in one order on every path."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

EXTRACT = {"extract": r"answer (\d+)", "normalize": ["number"]}


async def test_a_sample_and_its_join_list_the_winners_in_declared_order(kit: Any) -> None:
    """Samples 2, 0 and 1 finish in that order: the sample step and its join both list the
    winners as [0, 1, 2] (declared order); the order they finished is `finish_order`."""
    fake = kit.FakeBackend(kit.by_pattern({"Q": [
        kit.Reply("answer 7", 0.2), kit.Reply("answer 5", 0.3), kit.Reply("answer 5", 0.05),
        kit.Reply("answer 7", 2.0), kit.Reply("answer 7", 2.0)]}), supports_n=True)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 5},
        {"id": "j", "kind": "join", "of": "s", "reducer": "first_finish", "first": 3,
         **EXTRACT}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.step("s").meta["finish_order"] == [2, 0, 1]
    assert r.step("s").meta["winners"] == [0, 1, 2]
    assert r.step("j").meta["winners"] == [0, 1, 2]
    assert r.result.output == 5


async def test_a_join_over_a_map_lists_the_winners_in_declared_order(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"item 0": kit.Reply("answer 1", 2.0),
                                           "item 1": kit.Reply("answer 2", 0.3),
                                           "item 2": kit.Reply("answer 2", 0.05)}))
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": [0, 1, 2],
         "step": {"kind": "llm", "prompt": "item {{ item }}"}},
        {"id": "j", "kind": "join", "of": "m", "reducer": "first_finish", "first": 2,
         **EXTRACT}]), fake=fake)
    assert r.result.ok, r.result.error
    meta = r.step("j").meta
    assert meta["fanout"]["finish_order"][:2] == [2, 1]
    assert meta["winners"] == [1, 2] and meta["fanout"]["winners"] == [1, 2]


async def test_a_tie_among_the_first_m_goes_to_the_earliest_declared(kit: Any) -> None:
    """tie_break first is the earliest child in declared order, as for any vote: sample 1
    answered 5 before sample 0 answered 7, and 7 wins the tie."""
    fake = kit.FakeBackend(kit.by_pattern({"Q": [
        kit.Reply("answer 7", 0.3), kit.Reply("answer 5", 0.05), kit.Reply("answer 5", 2.0)]}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 3},
        {"id": "j", "kind": "join", "of": "s", "reducer": "first_finish", "first": 2,
         **EXTRACT}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.step("s").meta["finish_order"][:2] == [1, 0]
    assert r.result.output == 7 and r.step("j").meta["winners"] == [0, 1]
