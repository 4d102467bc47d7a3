"""bench/planner_bench.py runs on the virtual clock and its modes keep their order."""

from __future__ import annotations

import re

import pytest
from bench_scripts import run_bench


def test_the_planner_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    run_bench("planner_bench", ["--questions", "8", "--breakdown"])
    out = capsys.readouterr().out
    rows = {m.group(1): cells
            for m in re.finditer(r"^\| \((\w)\) [^|]+ \| (.+) \|$", out, re.MULTILINE)
            if len(cells := m.group(2).split(" | ")) == 9}  # the main table's rows
    mean = {k: float(v[0]) for k, v in rows.items()}
    assert mean["a"] > mean["b"] > mean["c"] > mean["d"] > 0
    assert all(rows[k][7] == "8/8" for k in "abcd")  # every answer checked and right
    assert rows["d"][4] == "1.0"  # LLM calls per question: the plan only
    assert "Where the time goes" in out
