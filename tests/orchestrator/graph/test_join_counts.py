"""A join's counts of children are held to the children its fan-out starts, where the
workflow says how many. ``first: 5`` over fewer children was caught; ``min_successes:
10`` over 3 samples passed validate, and the join could only fail; an adaptive_vote's
``min_n`` above the samples it can have could never be met."""

from __future__ import annotations

import pytest

from orchestrator.graph.validate import validate_text

HEAD = ("name: f\nsteps:\n  - {id: s, kind: sample, prompt: p, n: 3}\n"
        "  - {id: sp, kind: spawn, messages: [a, b, c], max_children: 2}\n"
        "  - {id: m, kind: map, over: [1], step: {kind: llm, prompt: x}}\n")


def _problems(join: str) -> list[tuple[int, str, str | None]]:
    return [(p.line, p.message, p.hint) for p in validate_text(HEAD + join, "f.yaml")]


@pytest.mark.parametrize(("join", "message", "hint"), [
    ("{id: j, kind: join, of: s, policy: min_successes, min_successes: 10}",
     "join 'j': min_successes 10 is more than the 3 children 's' starts",
     "use min_successes <= 3, or start more children"),
    ("{id: j, kind: join, of: sp, reducer: vote, policy: min_successes, min_successes: 3}",
     "join 'j': min_successes 3 is more than the 2 children 'sp' starts",
     "use min_successes <= 2, or start more children"),
    ("{id: j, kind: join, of: m, reducer: adaptive_vote, min_n: 2}",
     "join 'j': min_n 2 is more than the 1 child 'm' starts",
     "use min_n <= 1, or start more children"),
])
def test_a_count_above_the_children_is_located(join: str, message: str, hint: str) -> None:
    assert _problems(f"  - {join}\n") == [(6, message, hint)]


@pytest.mark.parametrize("join", [
    "{id: j, kind: join, of: s, policy: min_successes, min_successes: 3}",
    # adaptive_vote's default min_n (3) is no error over fewer samples: it votes them all
    "{id: j, kind: join, of: m, reducer: adaptive_vote}",
    # a cap: max_n above the samples only caps nothing
    "{id: j, kind: join, of: s, reducer: adaptive_vote, min_n: 3, max_n: 16}",
    # the children of a fan-out over another step's output are known at run time only
    "{id: j, kind: join, of: dyn, policy: min_successes, min_successes: 50}",
])
def test_counts_within_the_children_or_unknown_ones_pass(join: str) -> None:
    dyn = "  - {id: dyn, kind: spawn, messages: '${steps.s.output}'}\n"
    assert _problems(f"{dyn}  - {join}\n") == []


def test_min_n_above_max_n_is_reported_once() -> None:
    problems = _problems("  - {id: j, kind: join, of: s, reducer: adaptive_vote, min_n: 9, "
                         "max_n: 4}\n")
    assert [m for _, m, _ in problems] == ["join 'j': min_n 9 is greater than max_n 4"]
