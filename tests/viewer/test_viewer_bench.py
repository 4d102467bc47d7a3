"""bench/viewer_bench.py runs at a toy size: every request answers a real ``ponder view``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_scripts import run_bench


def test_the_viewer_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_bench("viewer_bench", ["--events", "700", "--db", str(tmp_path / "v.db"),
                                      "--only", "run (steps=false)", "all events", "stream",
                                      "--store-read", "2"])
    assert [r["request"] for r in rows] == ["run (steps=false)", "all events", "stream"]
    assert all(r["seconds"] > 0 for r in rows)
    assert len({r["result"] for r in rows}) == 1  # each saw every event of the run
    out = capsys.readouterr().out
    assert re.search(r"^\| all events \| [\d.]+ \| ", out, re.MULTILINE), out
    reads = re.findall(r"^\| read \d \| [\d.]+ \| [\d.]+ \| (\d+) \|$", out, re.MULTILINE)
    assert reads == [str(rows[0]["result"])] * 2, out


@pytest.mark.browser
def test_the_viewer_page_benchmark_runs(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Chromium is missing")
    out = run_bench("viewer_page_bench", ["--shape", "graph", "--steps", "120", "--nested", "30",
                                          "--db", str(tmp_path / "p.db")])
    assert out["page errors"] == []
    assert 0 < out["graph drawn"] <= out["all events"]
    assert out["events in the scrubber"] == 3 * (120 + 30 + 1) + 4  # run_started, 2 patches, run_finished


@pytest.mark.browser
def test_the_viewer_page_benchmark_runs_with_large_outputs(tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Chromium is missing")
    out = run_bench("viewer_page_bench", ["--shape", "outputs", "--steps", "3",
                                          "--output-mb", "0.2", "--db", str(tmp_path / "o.db")])
    assert out["page errors"] == []
    assert 0 < out["graph drawn"] <= out["all events"]
    assert out["open a step"] > 0
