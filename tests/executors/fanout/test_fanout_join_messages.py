"""What a join says when it has nothing to vote on or its children failed, and how a vote
compares answers.

- A vote whose extractor matched but whose ``number`` normaliser found no number in what
  it matched blamed the extractor (``the extractor (\\w+) found no answer``): it names the
  normaliser and the extracted answer now.
- The children of one shared sample request share its step and its error: the join's
  error named ``s[0:3]: ...`` once per child, three times the same text.
- A vote compares answers as text: the number ``2`` and the text ``"2"`` are one answer,
  ``true`` and ``1`` are not (the README says so).
"""

from __future__ import annotations

from typing import Any

import pytest

from executors.fanout._live import Child
from executors.fanout._reduce import Tally, answers_of, apply_policy, no_answer_error
from orchestrator.errors import StepError
from orchestrator.spec.kinds_fanout import JoinStep

pytestmark = pytest.mark.anyio


def _join(**fields: Any) -> JoinStep:
    return JoinStep.model_validate({"id": "j", "kind": "join", "of": "s", "reducer": "vote",
                                    **fields})


def _ok(*outputs: Any) -> list[Child]:
    return [Child(i, f"s[{i}]", "succeeded", out) for i, out in enumerate(outputs)]


def test_a_number_normaliser_that_finds_no_number_is_named_not_the_extractor() -> None:
    join = _join(extract=r"(\w+)", normalize=["lower", "number"])
    children = _ok("Signal prism signal", "Garnet alpha")
    assert answers_of(children, join) == ([], [0, 1])
    assert str(no_answer_error(join, "s", children)) == (
        "join 'j' (vote): no answer in any of the 2 succeeded children of 's': normalize "
        "`number` found no number in the extracted answer 'signal' (child 0 wrote 'Signal "
        "prism signal')")


def test_an_extractor_that_finds_nothing_is_still_named() -> None:
    join = _join(extract=r"answer: (\d+)", normalize=["number"])
    assert str(no_answer_error(join, "s", _ok("no answer here"))) == (
        "join 'j' (vote): the extractor `answer: (\\d+)` found no answer in any of the 1 "
        "succeeded children of 's' (child 0 wrote 'no answer here')")


def test_children_without_an_answer_for_different_reasons_name_each_once() -> None:
    join = _join(extract=r"answer: (\w+)", normalize=["number"])
    children = _ok("answer: none", "nothing", "answer: never")
    assert str(no_answer_error(join, "s", children)) == (
        "join 'j' (vote): no answer in any of the 3 succeeded children of 's': normalize "
        "`number` found no number in the extracted answer 'none' (child 0 wrote 'answer: "
        "none'; so in 2 of them); the extractor `answer: (\\w+)` found no answer (child 1 "
        "wrote 'nothing'; so in 1 of them)")


def test_without_an_extractor_the_normalisation_is_named() -> None:
    assert str(no_answer_error(_join(normalize=["number"]), "s", _ok("seven"))) == (
        "join 'j' (vote): no answer in any of the 1 succeeded children of 's': normalize "
        "`number` found no number in the answer 'seven' (child 0 wrote 'seven')")
    assert str(no_answer_error(_join(), "s", _ok(" . "))) == (
        "join 'j' (vote): no answer in any of the 1 succeeded children of 's': "
        "normalisation (strip) left the answer ' . ' empty (child 0 wrote ' . ')")


async def test_a_vote_over_words_with_a_number_normaliser_says_why(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("Signal prism signal")}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 3},
        {"id": "v", "kind": "join", "of": "s", "reducer": "vote", "extract": r"(\w+)",
         "normalize": ["lower", "number"]}]), fake=fake)
    assert r.failed("v").error == (
        "join 'v' (vote): no answer in any of the 3 succeeded children of 's': normalize "
        "`number` found no number in the extracted answer 'signal' (child 0 wrote 'Signal "
        "prism signal')")


SHARED = [Child(i, "s[0:3]", "failed", error="fake: scripted failure") for i in range(3)]


@pytest.mark.parametrize(("policy", "start"), [
    ("require_all", "join 'j' requires every child of 's'; 3 of 3 failed: "),
    ("ignore_failures", "join 'j': every child of 's' failed (3 of 3): "),
])
def test_children_of_one_request_are_named_once(policy: str, start: str) -> None:
    with pytest.raises(StepError) as info:
        apply_policy(SHARED, _join(policy=policy), "s")
    assert str(info.value) == start + "s[0:3]: fake: scripted failure"


def test_distinct_failures_are_still_listed_up_to_three() -> None:
    failed = [Child(i, f"s[{i}]", "failed", error="boom") for i in range(5)]
    with pytest.raises(StepError) as info:
        apply_policy(failed, _join(policy="require_all"), "s")
    assert str(info.value).endswith(
        "5 of 5 failed: s[0]: boom; s[1]: boom; s[2]: boom (and 2 more)")


async def test_a_failed_shared_request_is_named_once_by_its_join(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("x", fail=True)}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 3, "retry": {"max_attempts": 1}},
        {"id": "j", "kind": "join", "of": "s", "reducer": "vote", "policy": "require_all"}]),
        fake=fake)
    assert r.failed("j").error == ("join 'j' requires every child of 's'; 3 of 3 failed: "
                                   "s[0:3]: fake: scripted failure")


@pytest.mark.parametrize(("outputs", "votes", "winner"), [
    ([2, 2.0, "2"], {"2": 3}, 2),  # compared as text: the number 2 is the text "2"
    (["2", 2], {"2": 2}, "2"),  # the first voter's value wins
    ([True, 1, 1], {"true": 1, "1": 2}, 1),  # true is not 1
    ([{"a": 1, "b": 2}, {"b": 2, "a": 1.0}], {'{"a": 1, "b": 2}': 2}, {"a": 1, "b": 2}),
])
def test_a_vote_without_extract_compares_answers_as_text(
        outputs: list[Any], votes: dict[str, int], winner: Any) -> None:
    answers, invalid = answers_of(_ok(*outputs), _join())
    assert invalid == []
    tally = Tally.of(answers)
    assert tally.votes() == votes
    won = tally.value(tally.leader()[0])
    assert won == winner and type(won) is type(winner)  # True == 1 in Python
