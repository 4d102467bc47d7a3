"""calc's round() with an ndigits far past any number's digits answers at once, as
Python's round would (0, or the number itself). Python computes 10 ** ndigits first:
`round(5, -100000000)` ran for minutes on a thread that a step's timeout cannot stop.
calc and a template's `round` hold ndigits to one bound."""

from __future__ import annotations

import time

import pytest

from executors.builtin_tools import calc
from orchestrator.spec._template_bounds import MAX_ROUND_DIGITS, round_digits
from orchestrator.spec.templates import render


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


@pytest.mark.parametrize(("expression", "template"), [
    ("round(5, -100000000)", "{{ 5 | round(-100000000) }}"),
    ("round(7 ** 1000, -100000000)", "{{ (7 ** 1000) | round(-100000000) }}"),
    ("round(7 ** 1000, -845)", "{{ (7 ** 1000) | round(-845) }}"),
    ("round(7 ** 1000, 100000000)", "{{ (7 ** 1000) | round(100000000) }}"),
    ("round(1.25, 100000000)", "{{ 1.25 | round(100000000) }}"),
    ("round(123456, -2)", "{{ 123456 | round(-2) }}"),
    ("round(1.23456, 3)", "{{ 1.23456 | round(3) }}"),
])
def test_calc_rounds_as_a_template_rounds_under_one_bound(expression: str,
                                                          template: str) -> None:
    # the calc tool held ndigits to 1,300 digits, the template filter to 5,000: one bound,
    # one helper, for both
    assert (round_digits(-10**8), round_digits(10**8)) == (-MAX_ROUND_DIGITS, MAX_ROUND_DIGITS)
    assert str(calc(expression)) == render(template, {}).removesuffix(".0")
