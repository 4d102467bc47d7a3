"""bench/engine_bench.py still runs and prints its tables (a small load)."""

from __future__ import annotations

import pytest
from bench_scripts import run_bench


def test_the_engine_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_bench("engine_bench", ["--runs", "12", "--spawn-runs", "4", "--no-sweep"])
    out = capsys.readouterr().out
    for title in ("### Policies", "### Routing", "### Targets"):
        assert title in out
    assert "| program_aware |" in out
    assert result["prefill_ratio"] > 1.5
