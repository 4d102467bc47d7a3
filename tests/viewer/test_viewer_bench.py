"""bench/viewer_bench.py runs at a toy size: every request answers a real ``ponder view``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_scripts import run_bench


def test_the_viewer_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_bench("viewer_bench", ["--events", "700", "--db", str(tmp_path / "v.db"),
                                      "--only", "run (steps=false)", "all events", "stream"])
    assert [r["request"] for r in rows] == ["run (steps=false)", "all events", "stream"]
    assert all(r["seconds"] > 0 for r in rows)
    assert len({r["result"] for r in rows}) == 1  # each saw every event of the run
    out = capsys.readouterr().out
    assert re.search(r"^\| all events \| [\d.]+ \| ", out, re.MULTILINE), out
