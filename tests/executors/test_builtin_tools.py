"""Built-in tools: `calc` evaluates arithmetic only; `extract`; `sleep` bounds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executors.builtin_tools import calc, extract, sleep
from orchestrator.errors import ToolError


@pytest.mark.parametrize(("expr", "value"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 / 2", 3.5), ("8 / 2", 4), ("2 ** 10", 1024),
    ("-3 + +1", -2), ("sqrt(16) + max(1, 5)", 9), ("round(2.567, 2)", 2.57), ("10 % 4", 2),
    ("pi > 3", None),
])
def test_calc_evaluates_arithmetic(expr: str, value: float | None) -> None:
    if value is None:
        with pytest.raises(ToolError):
            calc(expr)
    else:
        assert calc(expr) == value


@pytest.mark.parametrize("expr", [
    "__import__('os').system('id')", "open('/etc/passwd')", "().__class__", "x + 1",
    "[1, 2]", "'a' * 3", "lambda: 1", "2 ** 99999", "1 / 0", "max(*[1])", "",
])
def test_calc_refuses_everything_else(expr: str) -> None:
    with pytest.raises(ToolError):
        calc(expr)


@pytest.mark.parametrize(("expr", "message"), [
    ("1e308 * 10", "too large"), ("1e999", "too large"), ("exp(709) * 10", "too large"),
    ("1e308 * 10 - 1e308 * 10", "too large"), ("10.0 ** 400", "too large"),
    ("(-8) ** 0.5", "not a real number"), ("abs((-8) ** 0.5)", "not a real number"),
])
def test_calc_answers_finite_real_numbers_only(expr: str, message: str) -> None:
    # infinity is not JSON, and a complex number was written out as its repr
    with pytest.raises(ToolError, match=message):
        calc(expr)


@given(st.text(max_size=60))
def test_calc_never_raises_anything_but_tool_error(expr: str) -> None:
    try:
        value = calc(expr)
    except ToolError:
        return
    assert isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def test_extract() -> None:
    assert extract("a=1, b=22", r"b=(\d+)", group=1) == "22"
    assert extract("a=1, b=22", r"\d+", all=True) == ["1", "22"]
    assert extract("abc", r"\d") is None
    with pytest.raises(ToolError, match="bad pattern"):
        extract("x", "(")
    with pytest.raises(ToolError, match="no group 2"):
        extract("ab", "(a)", group=2)


def test_extract_gives_up_on_a_pattern_that_backtracks(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.spec import patterns

    monkeypatch.setattr(patterns, "MATCH_TIMEOUT_S", 0.05)
    for every in (False, True):
        with pytest.raises(ToolError, match=r"extract: the pattern .* took over 0.05 s"):
            extract("x" * 4000, r"(x+x+)+y", all=every)


@pytest.mark.anyio
async def test_sleep_bounds() -> None:
    assert await sleep(0) == 0
    with pytest.raises(ToolError):
        await sleep(-1)
