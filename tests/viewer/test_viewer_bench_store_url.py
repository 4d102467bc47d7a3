"""bench/viewer_bench.py ``--store-url``: the store read times another store than the
``--db`` file (the run written into it first), and ``--only`` with no name makes no
request."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_scripts import run_bench


def test_the_store_read_reads_the_store_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.db"
    argv = ["--events", "400", "--db", str(tmp_path / "unused.db"), "--only",
            "--store-read", "2", "--store-url", f"sqlite:///{other}"]  # fmt: skip
    assert run_bench("viewer_bench", argv) == []
    out = capsys.readouterr().out
    written = re.findall(r"^wrote ([\d,]+) events to --store-url", out, re.MULTILINE)
    assert len(written) == 1, out
    reads = re.findall(r"^\| read \d \| [\d.]+ \| [\d.]+ \| (\d+) \|$", out, re.MULTILINE)
    assert reads == [written[0].replace(",", "")] * 2, out
    assert other.exists() and not (tmp_path / "unused.db").exists()
    assert "first request" not in out
    # a second run finds the run there and reads it as it is
    assert run_bench("viewer_bench", argv) == []
    out = capsys.readouterr().out
    assert "wrote" not in out
    assert re.findall(r"^\| read \d \| [\d.]+ \| [\d.]+ \| (\d+) \|$", out, re.MULTILINE) == reads
