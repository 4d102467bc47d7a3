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


def test_open_arrivals_keep_the_runs_and_space_them_out(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    import re

    run_bench("engine_bench", ["--runs", "12", "--spawn-runs", "4", "--no-sweep",
                               "--loads", "0.5"])
    out = capsys.readouterr().out
    assert "### Open arrivals" in out
    rows = re.findall(r"^\| 50% \| \d+ \| (\w+) \| ([\d.]+) \|", out, re.MULTILINE)
    assert [policy for policy, _ in rows] == ["fifo", "critical_path", "program_aware"]
    assert all(float(mean) > 0 for _, mean in rows)


def test_poisson_arrivals_are_seeded_and_keep_each_run() -> None:
    import importlib.util
    import itertools
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "bench" / "engine_bench.py"
    spec = importlib.util.spec_from_file_location("engine_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["engine_bench"] = bench
    try:
        spec.loader.exec_module(bench)
        runs = bench.workload({"short": 6, "long": 2}, 0, 5.0)
        first = bench.poisson_arrivals(runs, 2.0, 0)
        again = bench.poisson_arrivals(runs, 2.0, 0)
        assert [r.arrival for r in first] == [r.arrival for r in again]
        assert [(r.id, r.kind, r.nodes) for r in first] == [(r.id, r.kind, r.nodes)
                                                             for r in runs]
        gaps = [b.arrival - a.arrival for a, b in itertools.pairwise(first)]
        assert first[0].arrival == 0 and all(g > 0 for g in gaps)
        assert 0.1 < sum(gaps) / len(gaps) < 2.0  # mean gap 1 / rate = 0.5 s
    finally:
        sys.modules.pop("engine_bench", None)
