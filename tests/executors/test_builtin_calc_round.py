"""calc's round() with an ndigits far past any number's digits answers at once, as
Python's round would (0, or the number itself). Python computes 10 ** ndigits first:
`round(5, -100000000)` ran for minutes on a thread that a step's timeout cannot stop."""

from __future__ import annotations

import time

import pytest

from executors.builtin_tools import calc


@pytest.mark.parametrize(("expression", "expected"), [
    ("round(5, -100000000)", 0),
    ("round(-5.5, -100000000)", 0),
    ("round(7 ** 1000, -100000000)", 0),
    ("round(7, 100000000)", 7),
    ("round(1.25, 100000000)", 1.25),
    ("round(123456, -2)", 123500),
    ("round(1.23456, 3)", 1.235),
    ("round(2.5)", 2),
])
def test_round_answers_at_once_whatever_its_digits(expression: str, expected: float) -> None:
    start = time.monotonic()
    assert calc(expression) == expected
    assert time.monotonic() - start < 1
