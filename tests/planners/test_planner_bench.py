"""bench/planner_bench.py runs on the virtual clock and its modes keep their order."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "planner_bench.py"


def test_the_planner_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("planner_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["planner_bench"] = module
    try:
        spec.loader.exec_module(module)
        module.main(["--questions", "8", "--breakdown"])
    finally:
        sys.modules.pop("planner_bench", None)
    out = capsys.readouterr().out
    rows = {m.group(1): cells
            for m in re.finditer(r"^\| \((\w)\) [^|]+ \| (.+) \|$", out, re.MULTILINE)
            if len(cells := m.group(2).split(" | ")) == 9}  # the main table's rows
    mean = {k: float(v[0]) for k, v in rows.items()}
    assert mean["a"] > mean["b"] > mean["c"] > mean["d"] > 0
    assert all(rows[k][7] == "8/8" for k in "abcd")  # every answer checked and right
    assert rows["d"][4] == "1.0"  # LLM calls per question: the plan only
    assert "Where the time goes" in out
