"""`ponder export` then `ponder import` of a run whose float fields hold an infinity or
NaN (a backend reporting an inf latency): export wrote them as JSON's missing numbers,
which import refused; they now travel as strings and read back as the same floats."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.runtime import events as ev
from orchestrator.store import open_store


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_a_run_with_an_infinite_latency_is_copied_to_another_store(
    db: str, tmp_path: Path
) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"

    async def seed() -> None:
        async with await open_store(source) as store:
            await store.append([
                ev.RunStarted(run_id="r", seq=0, ts=1.0, workflow="w", inputs={}),
                ev.StepSucceeded(run_id="r", seq=1, ts=2.0, step_id="a", attempt=1,
                                 output=1, latency_s=math.inf),
                ev.RunFinished(run_id="r", seq=2, ts=3.0, status="succeeded",
                               duration_s=math.nan),
            ])  # fmt: skip

    anyio.run(seed)
    doc = tmp_path / "r.json"
    exported = ponder("export", "r", "--db", source, "-o", str(doc))
    assert exported.exit_code == 0, exported.stderr
    imported = ponder("import", str(doc), "--db", db)
    assert imported.exit_code == 0, imported.stderr

    async def read() -> list[ev.Event]:
        async with await open_store(db) as store:
            return await store.events("r")  # type: ignore[return-value]

    _, succeeded, finished = anyio.run(read)
    assert isinstance(succeeded, ev.StepSucceeded) and succeeded.latency_s == math.inf
    assert isinstance(finished, ev.RunFinished) and math.isnan(finished.duration_s)
