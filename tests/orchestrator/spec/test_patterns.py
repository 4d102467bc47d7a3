"""Workflow patterns are matched with a time limit (orchestrator.spec.patterns)."""

from __future__ import annotations

import time

import pytest

from orchestrator.spec import patterns


def test_search_and_find_all_match_as_re_does() -> None:
    m = patterns.search(r"answer is (?P<answer>\d+)", "the answer is 42.")
    assert m is not None and m.group("answer") == "42"
    assert [m.group(1) for m in patterns.find_all(r"(\d+)", "1 a 22 b 333")] == ["1", "22", "333"]
    assert patterns.search("ABC", "xabcx", patterns.IGNORECASE) is not None
    assert patterns.search("nothing", "here") is None


def test_a_pattern_that_backtracks_for_good_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patterns, "MATCH_TIMEOUT_S", 0.1)
    for match in (patterns.search, patterns.find_all):
        start = time.monotonic()
        with pytest.raises(patterns.PatternTimeout,
                           match=r"the pattern '\(x\+x\+\)\+y' took over 0.1 s on a text "
                                 r"of 5,000 characters"):
            match(r"(x+x+)+y", "x" * 5000)
        assert time.monotonic() - start < 5


def test_a_pattern_that_does_not_compile_names_itself() -> None:
    with pytest.raises(patterns.PatternError, match=r"'\(unclosed' is not a regular "
                                                    r"expression: missing \)"):
        patterns.search("(unclosed", "text")
