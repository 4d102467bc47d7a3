"""How a vote reads answers: the ``strip`` and ``number`` normalisers on what LLMs write."""

from __future__ import annotations

from typing import Any

import pytest

from executors.fanout._reduce import normalize, parse_number

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


@pytest.mark.parametrize(("text", "value"), [
    ("The answer is 2.5e-3", 0.0025), ("1.5E+6 joules", 1500000), ("3.0e2", 300),
    ("24-18", 18), ("on 2023-10-05", 5), ("x = 5-3", 3),
    ("\u22123", -3), ("(\u22122.5)", -2.5), ("= -7", -7), ("-.5", -0.5),
    ("1e999", None),
])
def test_the_number_normaliser_reads_exponents_minus_signs_and_hyphens(
        text: str, value: object) -> None:
    assert parse_number(text) == value


async def test_a_vote_counts_an_answer_in_scientific_notation_as_its_value(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": [kit.Reply(a) for a in
                                                 ("k = 2.5e-3", "k = 0.0025", "k = -3")]}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 3},
        {"id": "v", "kind": "join", "of": "s", "reducer": "vote",
         "normalize": ["strip", "number"]}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == 0.0025
    assert r.step("v").meta["votes"] == {"0.0025": 2, "-3": 1}
