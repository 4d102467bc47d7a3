"""bench/engine_bench.py still runs and prints its tables (a small load)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "engine_bench.py"


def test_the_engine_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("engine_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["engine_bench"] = module
    try:
        spec.loader.exec_module(module)
        result = module.main(["--runs", "12", "--spawn-runs", "4", "--no-sweep"])
    finally:
        sys.modules.pop("engine_bench", None)
    out = capsys.readouterr().out
    for title in ("### Policies", "### Routing", "### Targets"):
        assert title in out
    assert "| program_aware |" in out
    assert result["prefill_ratio"] > 1.5
