"""The pure reducer pieces: answers, numbers, votes, the adaptive rule, the policy."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executors.fanout._live import Child, from_entry, is_marker
from executors.fanout._reduce import (
    Tally,
    answers_of,
    apply_policy,
    beta_confidence,
    confident,
    decided,
    extract_answer,
    flip_risk,
    normalize,
    parse_number,
    risk,
    rule_value,
    threshold,
)
from executors.fanout._score import Score, passes, to_score
from executors.fanout.spawn import parse_messages
from orchestrator.errors import StepError
from orchestrator.spec.kinds_fanout import JoinStep, Scorer


def join(**fields: object) -> JoinStep:
    return JoinStep.model_validate({"id": "j", "of": "s", **fields})


def ok(i: int, text: object) -> Child:
    return Child(i, f"s[{i}]", "succeeded", text)


def test_the_last_match_of_the_extractor_is_the_answer() -> None:
    text = "First 3 + 4 = 7, the answer is 7? No: the answer is 12."
    assert extract_answer(text, r"answer is (\d+)") == "12"
    assert extract_answer(text, r"answer is (?P<answer>\d+)") == "12"
    assert extract_answer(text, r"\d+") == "12"
    assert extract_answer("nothing here", r"answer is (\d+)") is None
    assert extract_answer("whole", None) == "whole"


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("-3.50", -3.5), ("1,234 apples", 1234), ("7/2", 3.5), ("x = 6.0", 6),
    ("no number", None), ("between 3 and 5", 5),
])
def test_numbers_are_parsed_canonically(text: str, value: object) -> None:
    assert parse_number(text) == value


def test_normalisers_apply_in_order_and_invalid_answers_are_dropped() -> None:
    assert normalize("  The  Cat. ", ["strip", "lower", "collapse_spaces"]) == "the cat"
    assert normalize("$1,200.", ["strip", "number"]) == 1200
    j = join(reducer="vote", extract=r"answer: (\S+)", normalize=["number"])
    children = [ok(0, "answer: 4"), ok(1, "answer: four"), ok(2, "no answer"),
                Child(3, "s[3]", "failed", None, "boom"), ok(4, "answer: 4.0")]
    answers, invalid = answers_of(children, j)
    assert [a.key for a in answers] == [4, 4]
    assert invalid == [1, 2]


def test_tie_breaks() -> None:
    j = join(reducer="vote")
    answers, _ = answers_of([ok(0, "long answer b"), ok(1, "a"), ok(2, "long answer b"),
                             ok(3, "a")], j)
    tally = Tally.of(answers)
    assert tally.votes() == {"long answer b": 2, "a": 2}
    assert tally.leader("first") == ("long answer b", 2)
    assert tally.leader("shortest") == ("a", 2)
    assert tally.leader("longest") == ("long answer b", 2)


def test_adaptive_share_rule_needs_min_n_and_the_share() -> None:
    j = join(reducer="adaptive_vote", stop_rule="share", confidence=0.75, min_n=3)
    agree = [ok(i, "7") for i in range(2)]
    assert not confident(Tally.of(answers_of(agree, j)[0]), j, 0)  # two answers: too few
    assert confident(Tally.of(answers_of([*agree, ok(2, "7")], j)[0]), j, 0)
    mixed = [ok(0, "7"), ok(1, "7"), ok(2, "8"), ok(3, "7")]
    assert confident(Tally.of(answers_of(mixed, j)[0]), j, 0)  # 3/4 = 0.75
    assert not confident(Tally.of(answers_of(mixed[:3], j)[0]), j, 0)  # 2/3


def _beta_by_quadrature(a: int, b: int, steps: int = 20000) -> float:
    """P(x > 1/2) for x ~ Beta(a + 1, b + 1), by the midpoint rule (an independent check)."""
    def pdf(x: float) -> float:
        return x**a * (1 - x) ** b

    h = 1 / steps
    mass = [pdf((i + 0.5) * h) for i in range(steps)]
    return sum(mass[steps // 2:]) / sum(mass)


@pytest.mark.parametrize(("top", "second"), [(3, 0), (4, 0), (4, 1), (6, 2), (10, 7), (1, 1)])
def test_beta_criterion_is_the_posterior_probability(top: int, second: int) -> None:
    assert beta_confidence(top, second) == pytest.approx(_beta_by_quadrature(top, second),
                                                         abs=1e-6)


def test_beta_criterion_exact_values() -> None:
    # P(Binomial(top + second + 1, 1/2) <= top)
    assert Fraction(beta_confidence(3, 0)).limit_denominator(64) == Fraction(15, 16)
    assert Fraction(beta_confidence(4, 1)).limit_denominator(64) == Fraction(57, 64)
    assert beta_confidence(5, 5) == 0.5
    assert math.isclose(beta_confidence(200, 0), 1.0)


def test_beta_rule_is_the_default_at_095() -> None:
    j = join(reducer="adaptive_vote", min_n=1)
    assert (j.stop_rule, threshold(j)) == ("beta", 0.95)
    assert threshold(join(reducer="adaptive_vote", stop_rule="share")) == 0.75
    sevens = [ok(i, "7") for i in range(4)]
    assert not confident(Tally.of(answers_of(sevens[:3], j)[0]), j, 0)  # 15/16 < 0.95
    assert confident(Tally.of(answers_of(sevens, j)[0]), j, 0)  # 31/32
    # a share of 6/7 is not enough when the runner-up has one vote: 0.9648 (> 0.95) is
    mixed = [ok(0, "7"), ok(1, "2"), *(ok(i, "7") for i in range(2, 7))]
    assert not confident(Tally.of(answers_of(mixed[:6], j)[0]), j, 0)  # 5-1: 0.9375
    assert confident(Tally.of(answers_of(mixed, j)[0]), j, 0)  # 6-1


def test_decided_when_the_rest_cannot_change_the_winner() -> None:
    tally = Tally.of(answers_of([ok(0, "1"), ok(1, "2"), ok(2, "1"), ok(3, "1")],
                                join(reducer="vote"))[0])
    assert decided(tally, 1)  # 3-1 with one left
    assert not decided(tally, 2)  # 3-1 with two left could end in a tie
    assert not decided(Tally(), 0)


@given(st.lists(st.integers(0, 3), min_size=1, max_size=16))
def test_a_decided_prefix_has_the_full_votes_winner(answers: list[int]) -> None:
    j = join(reducer="vote")
    full = Tally.of(answers_of([ok(i, str(a)) for i, a in enumerate(answers)], j)[0])
    for m in range(1, len(answers) + 1):
        prefix = Tally.of(answers_of([ok(i, str(a)) for i, a in enumerate(answers[:m])], j)[0])
        if decided(prefix, len(answers) - m):
            assert prefix.leader()[0] == full.leader()[0]


@cache
def _flip_by_urn(top: int, second: int, others: int, left: int, ties_lost: bool) -> Fraction:
    """The predictive flip probability drawn one sample at a time (an independent check):
    under a uniform Dirichlet prior the next sample is each group's with probability
    (its count + 1) / (all counts + 3)."""
    if left == 0:
        return Fraction(second > top or (ties_lost and second == top))
    total = top + second + others + 3
    return (Fraction(top + 1, total) * _flip_by_urn(top + 1, second, others, left - 1, ties_lost)
            + Fraction(second + 1, total) * _flip_by_urn(top, second + 1, others, left - 1,
                                                          ties_lost)
            + Fraction(others + 1, total) * _flip_by_urn(top, second, others + 1, left - 1,
                                                         ties_lost))


@pytest.mark.parametrize("ties_lost", [False, True])
def test_predictive_risk_matches_sampling_one_at_a_time(ties_lost: bool) -> None:
    for top, second, others in [(3, 0, 0), (2, 1, 0), (4, 1, 2), (3, 3, 0), (1, 0, 5)]:
        for left in (0, 1, 2, 5, 9):
            exact = _flip_by_urn(top, second, others, left, ties_lost)
            assert flip_risk(top, second, others, left, ties_lost) == pytest.approx(
                float(exact), rel=1e-12, abs=1e-15)


def test_predictive_risk_matches_monte_carlo_over_the_dirichlet() -> None:
    rng = random.Random(5)
    top, second, others, left, trials, flips = 4, 1, 1, 10, 40_000, 0
    for _ in range(trials):
        g = [rng.gammavariate(c + 1, 1) for c in (top, second, others)]
        draws = rng.choices(range(3), weights=g, k=left)
        flips += second + draws.count(1) > top + draws.count(0)
    expected = flip_risk(top, second, others, left)
    assert abs(flips / trials - expected) < 4 * math.sqrt(expected / trials)


def test_predictive_risk_falls_as_the_samples_agree() -> None:
    assert flip_risk(5, 2, 0, 0) == 0 and flip_risk(2, 2, 0, 0, ties_lost=True) == 1
    assert flip_risk(3, 0, 0, 13) < flip_risk(3, 1, 0, 12) < flip_risk(3, 2, 0, 11)
    for top in range(1, 12):  # one more agreeing sample, one fewer left: never riskier
        for second in range(min(top, 16 - top)):
            left = 16 - top - second
            assert flip_risk(top + 1, second, 0, left - 1) <= flip_risk(top, second, 0, left)
            assert flip_risk(top, second, 0, left) <= flip_risk(top, second, 0, left, True)


def test_predictive_rule_stops_earlier_on_agreement_and_reads_the_tie_break() -> None:
    j = join(reducer="adaptive_vote", stop_rule="predictive", min_n=3)
    assert risk(j) == 0.05
    sevens = [ok(i, "7") for i in range(3)]
    assert confident(Tally.of(answers_of(sevens, j)[0]), j, 13)  # 3-0 with 13 left: .029
    mixed = [ok(0, "7"), ok(1, "2"), ok(2, "7"), ok(3, "7"), ok(4, "7")]
    assert not confident(Tally.of(answers_of(mixed[:4], j)[0]), j, 12)  # 3-1: .115
    assert confident(Tally.of(answers_of(mixed, j)[0]), j, 11)  # 4-1: .045
    # 2 answered first, so a final tie would go to it: the leader 7 needs more margin
    late = [ok(0, "2"), *(ok(i, "7") for i in range(1, 5))]
    tally = Tally.of(answers_of(late, j)[0])
    assert tally.contest("first") == (4, 1, 0, True) and tally.contest("shortest")[3]
    assert rule_value(tally, j, 11) == flip_risk(4, 1, 0, 11, ties_lost=True) > 0.05
    assert Tally.of(answers_of(mixed, j)[0]).contest("first") == (4, 1, 0, False)


def test_policies() -> None:
    children = [ok(0, "a"), Child(1, "s[1]", "failed", None, "boom"),
                Child(2, "s[2]", "cancelled", None, "cancelled: first_finish"),
                Child(3, None, "not_started", None, "budget")]
    assert [c.index for c in apply_policy(children, join(), "s")] == [0]
    with pytest.raises(StepError, match=r"requires every child of 's'; 1 of 4 failed: s\[1\]"):
        apply_policy(children, join(policy="require_all"), "s")
    with pytest.raises(StepError, match="1 of 4 children of 's' succeeded, 2 needed"):
        apply_policy(children, join(policy="min_successes", min_successes=2), "s")
    all_failed = [Child(i, f"s[{i}]", "failed", None, "boom") for i in range(3)]
    with pytest.raises(StepError, match=r"every child of 's' failed \(3 of 3\)"):
        apply_policy(all_failed, join(), "s")
    assert apply_policy([], join(), "s") == []  # nothing failed
    unstarted = [Child(0, None, "not_started", None, "budget")]
    assert apply_policy(unstarted, join(), "s") == []
    with pytest.raises(StepError, match="0 of 1 children of 's' succeeded, 1 needed"):
        apply_policy(unstarted, join(policy="min_successes"), "s")


def test_markers_round_trip() -> None:
    child = Child(2, "s[2]", "rejected", "text", "failed the check")
    entry = child.entry()
    assert is_marker(entry) and entry["output"] == "text"
    back = from_entry(2, entry)
    assert (back.status, back.output, back.step_id) == ("rejected", "text", "s[2]")
    assert not is_marker({"error": "user data", "status": "fine"})
    assert from_entry(0, {"answer": 1}).ok


@pytest.mark.parametrize(("reply", "score"), [
    ("8", 8.0), ("8/10", 8.0), ("8 out of 10", 8.0), ("Score: 7.5", 7.5), ("7.5/10.", 7.5),
    ("I'd give it 6, maybe 9 on a good day", 6.0), ("-2", -2.0), (".5", 0.5),
    ("no number at all", None), ("", None),
])
def test_a_judge_reply_scores_its_first_number(reply: str, score: float | None) -> None:
    assert to_score(reply) == score


def test_scores_and_checks() -> None:
    assert to_score(True) == 1.0
    assert to_score({"score": "7/10"}) == 7.0
    assert to_score("Score: 8 out of 10", r"Score: (\d+)") == 8.0
    assert to_score("no idea") is None
    check = Scorer(tool="t")
    assert passes(Score(0, 1.0, "yes"), check)
    assert not passes(Score(0, None, "No."), check)
    assert not passes(Score(0, None, None), check)
    assert passes(Score(0, None, "Answer: 12"), check)
    assert not passes(Score(0, 0.0, 0), check)
    strict = Scorer(llm="judge", threshold=7)
    assert passes(Score(0, 8.0, "8"), strict) and not passes(Score(0, 6.0, "6"), strict)
    assert not passes(Score(0, 9.0, "9", error="boom"), strict)


def test_messages_written_by_a_model() -> None:
    assert parse_messages('Here: ["a", "b"] done') == ["a", "b"]
    assert parse_messages("1. first\n- second\n\n* third") == ["first", "second", "third"]
