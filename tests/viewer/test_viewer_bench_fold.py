"""bench/viewer_bench.py ``--fold N``: the viewer's own work on a run's events held in
memory (the first ``?steps=false``, then ``/keyframe``), timed N times, without the
store's read."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest
from bench_scripts import BENCH, run_bench


def test_the_fold_times_the_viewers_answers_over_held_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "v.db"
    assert run_bench("viewer_bench", ["--events", "700", "--db", str(db), "--only",
                                      "--fold", "2"]) == []
    out = capsys.readouterr().out
    folds = re.findall(r"^\| fold \d \| ([\d.]+) \| [\d.]+ \| ([\d.]+) \| [\d.]+ "
                       r"\| ([\d,]+) \+ ([\d,]+) \|$", out, re.MULTILINE)
    assert len(folds) == 2, out
    assert all(float(run) > 0 for run, _, _, _ in folds), out
    assert all(int(a) > 0 and int(b) > 0 for _, _, a, b in folds), out
    assert "first request" not in out and "store read" not in out


def _bench_module() -> ModuleType:
    name = "viewer_bench_held"
    spec = importlib.util.spec_from_file_location(name, BENCH / "viewer_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # (its dataclasses look their module up there)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def test_the_held_reader_pages_the_run_as_a_store_does(tmp_path: Path) -> None:
    vb = _bench_module()
    db = tmp_path / "v.db"

    async def check() -> None:
        n = await vb.write_run(db, 300)
        events = await vb.read_all(db)
        assert [e.seq for e in events] == list(range(n))
        held = vb.HeldEvents(events)
        page = await held.events_page(vb.RUN_ID, after_seq=9, limit=5)
        assert [e.seq for e in page] == [10, 11, 12, 13, 14]
        assert await held.events_page("other", limit=5) == []
        run_level = await held.events(vb.RUN_ID, kinds={"run_started", "run_finished"})
        assert [e.kind for e in run_level] == ["run_started", "run_finished"]
        assert await held.run_info(vb.RUN_ID) is None and await held.list_runs() == []

    anyio.run(check)
