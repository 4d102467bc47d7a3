"""A fan-out's `top_p` (nucleus sampling) reaches each request it makes, and is recorded
with its requests' meta; a judge's calls (temperature 0) and a fan-out without `top_p`
send none."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("supports_n", [True, False])
async def test_a_sample_step_sends_its_top_p(kit: Any, supports_n: bool) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Propose": kit.Reply("candidate"),
                                           "Rate": kit.Reply("5")}),
                           supports_n=supports_n)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 3, "top_p": 0.8},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"llm": "default", "prompt": "Rate: {{ candidate }}"}}]), fake=fake)
    assert r.result.ok, r.result.error
    sampled = [q for q in fake.requests if "Propose" in q.messages[-1]["content"]]
    judged = [q for q in fake.requests if "Rate" in q.messages[-1]["content"]]
    assert sampled and all(q.top_p == 0.8 for q in sampled)
    assert len(judged) == 3 and all(q.top_p is None for q in judged)
    calls = [e for e in r.of_kind("step_succeeded") if e.step_id.startswith("s[")]
    assert calls and all(e.meta["top_p"] == 0.8 for e in calls)


async def test_a_sample_step_without_top_p_sends_none(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("a")}))
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": 2}]),
                      fake=fake)
    assert r.result.ok, r.result.error
    assert [q.top_p for q in fake.requests] == [None]
    calls = [e for e in r.of_kind("step_succeeded") if e.step_id.startswith("s[")]
    assert calls and all("top_p" not in e.meta for e in calls)


async def test_a_spawn_sends_its_top_p_from_the_messages_call_to_every_child(
        kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Split": kit.Reply('["sub 1", "sub 2"]'),
                                           r"sub \d": kit.Reply("done")}))
    r = await kit.run(kit.doc([
        {"id": "sp", "kind": "spawn", "messages_prompt": "Split the problem.",
         "top_p": 0.6},
        {"id": "j", "kind": "join", "of": "sp", "reducer": "concat"}]), fake=fake)
    assert r.result.ok, r.result.error
    assert [(q.messages[-1]["content"].split()[0], q.top_p) for q in fake.requests] == [
        ("Split", 0.6), ("sub", 0.6), ("sub", 0.6)]
