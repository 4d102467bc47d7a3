"""A spawn's messages written by a model (``messages_prompt``): the list in its reply."""

from __future__ import annotations

from typing import Any

import pytest

from executors.fanout.spawn import parse_messages

pytestmark = pytest.mark.anyio

#: a reply that writes its list in a fence, then a note with brackets in it
FENCED = '```json\n["sub 1", "sub 2"]\n```\nEach covers [part] of the problem, as in [1].'


def test_the_list_is_found_before_a_note_with_brackets() -> None:
    assert parse_messages(FENCED) == ["sub 1", "sub 2"]
    assert parse_messages('Plan [v2]:\n["a", {"x": [1]}].\nSee [3].') == ["a", {"x": [1]}]
    # what was read before still is: a whole span, numbered lines, lines
    assert parse_messages('Here: ["a", "b"] done') == ["a", "b"]
    assert parse_messages("[1] first\n[2] second") == ["[1] first", "[2] second"]
    assert parse_messages("1. first\n- second") == ["first", "second"]


async def test_a_spawn_starts_one_child_per_message_of_the_list(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Split": kit.Reply(FENCED),
                                           r"sub (\d)": kit.Reply("done")}))
    r = await kit.run(kit.doc([
        {"id": "sp", "kind": "spawn", "messages_prompt": "Split the problem."},
        {"id": "j", "kind": "join", "of": "sp", "reducer": "concat"}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == ["done", "done"]
    assert r.step("sp").meta["messages"] == 2
