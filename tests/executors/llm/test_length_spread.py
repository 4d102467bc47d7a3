"""bench/length_spread.py measures sample-length spread on the bundled model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_scripts import run_bench


def test_the_length_spread_benchmark_runs(gguf_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    run_bench("length_spread", ["--problems", "2", "--n", "3", "--m", "2",
                                "--max-tokens", "24", "--threads", "1"])
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (?!\*\*|problem|---)(.+?) \| ([\d, ]+) \| ([\d.]+) \| ([\d.]+)% "
                      r"\| ([\d.]+)% \|$", out, re.MULTILINE)
    assert len(rows) == 2, out
    for _, lengths, sigma, share, m_share in rows:
        values = [int(v) for v in lengths.split(", ")]
        assert len(values) == 3 and all(1 <= v <= 24 for v in values)
        assert values == sorted(values)
        assert float(share) == pytest.approx(100 * 3 * values[0] / sum(values), abs=0.06)
        assert float(m_share) == pytest.approx(100 * 3 * values[1] / sum(values), abs=0.06)
        assert float(sigma) >= 0
    assert "**all (2 problems)**" in out


def test_the_problems_are_deterministic() -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "length_spread", Path(__file__).resolve().parents[3] / "bench" / "length_spread.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["length_spread"] = module
    try:
        spec.loader.exec_module(module)
        assert module.problems(5) == module.problems(5)
        assert len(set(module.problems(12))) == 12
        assert module.problems(3, seed=1) != module.problems(3)
    finally:
        sys.modules.pop("length_spread", None)
