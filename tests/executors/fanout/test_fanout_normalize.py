"""How a vote reads answers: the ``strip`` and ``number`` normalisers on what LLMs write."""

from __future__ import annotations

from typing import Any

import pytest

from executors.fanout._reduce import normalize

pytestmark = pytest.mark.anyio

#: the extractor of examples/scaling/self_consistency.yaml
EXTRACT = r"(?i)answer is\s*\$?(-?[\d,]*\.?\d+)"


def test_strip_keeps_a_leading_decimal_point() -> None:
    assert normalize(".5", ["strip"]) == ".5"
    assert normalize(".5", ["strip", "number"]) == 0.5
    assert normalize(" .5. ", ["strip", "number"]) == 0.5
    # the periods of a sentence's end or an ellipsis still go
    assert normalize("42.", ["strip"]) == "42" and normalize("...42...", ["strip"]) == "42"
    assert normalize(". Paris.", ["strip"]) == "Paris"


async def test_a_vote_tells_point_five_from_five(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": [kit.Reply(f"So the answer is {a}.")
                                                 for a in (".5", "0.5", "5")]}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 3},
        {"id": "v", "kind": "join", "of": "s", "reducer": "vote", "extract": EXTRACT,
         "normalize": ["strip", "number"]}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == 0.5
    assert r.step("v").meta["votes"] == {"0.5": 2, "5": 1}
