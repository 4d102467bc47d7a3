"""`ponder import` of a run the trace store holds a part of: a run cancelled (or killed)
in store A, exported, resumed to its end in store B and exported back was refused ("run
X is in the trace store already ... Import it into another store"), so store A could
never hold how the run ended. Where the stored events are the document's first ones,
as they are, the import adds those that followed (stored events never change); a run
the store holds as the document has it is refused as before, and so is one that went
on in both stores, one the store holds more of, and one running there now."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.runtime import events as ev
from orchestrator.store import StoredEvent, open_store
from tests.store.conftest import full_run


def _resumed(run: list[StoredEvent], ts: float) -> list[StoredEvent]:
    """``run`` (cancelled) resumed to success: its events, then the resume's."""
    seq = len(run)
    return [*run,
            ev.RunStarted(run_id="r", seq=seq, ts=ts, workflow="wf", inputs={}, resumed=True),
            ev.RunFinished(run_id="r", seq=seq + 1, ts=ts + 1, status="succeeded",
                           output={"answer": 42})]


def _store(url: str, events: list[StoredEvent]) -> None:
    async def go() -> None:
        async with await open_store(url) as store:
            await store.append(events)

    anyio.run(go)


def _document(tmp_path: Path, events: list[StoredEvent]) -> Path:
    """The export of a store holding ``events``."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    _store(url, events)
    result = CliRunner().invoke(app, ["export", "r", "--db", url])
    assert result.exit_code == 0, result.stderr
    doc = tmp_path / "r.json"
    doc.write_text(result.stdout)
    return doc


def _import(doc: Path, db: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["import", str(doc), "--db", db])
    return result.exit_code, result.stdout, result.stderr


def _status(db: str) -> str:
    result = CliRunner().invoke(app, ["show", "r", "--json", "--db", db])
    assert result.exit_code == 0, result.stderr
    status: str = json.loads(result.stdout)["status"]
    return status


def test_the_end_of_a_run_resumed_elsewhere_is_added(tmp_path: Path, db: str) -> None:
    cancelled = full_run("r", status="cancelled")
    _store(db, cancelled)
    doc = _document(tmp_path, _resumed(cancelled, ts=2_000.0))
    code, out, err = _import(doc, db)
    assert code == 0, err
    assert out == ("imported run r: the trace store held part of it, the 2 events that "
                   "followed are added\n")
    assert _status(db) == "succeeded"
    again = CliRunner().invoke(app, ["export", "r", "--db", db])
    assert again.stdout == doc.read_text()
    # and once it holds all of it, importing it again is refused, as for any stored run
    code, _, err = _import(doc, db)
    assert code == 1
    assert err.startswith(f"error: {doc}: run r is in the trace store already (imported or "
                          "run there before); nothing was imported")


def test_a_run_that_went_on_in_both_stores_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'here.db'}"
    cancelled = full_run("r", status="cancelled")
    _store(db, _resumed(cancelled, ts=2_000.0))
    doc = _document(tmp_path, _resumed(cancelled, ts=3_000.0))
    code, _, err = _import(doc, db)
    assert code == 1
    assert err == (f"error: {doc}: run r is in the trace store already, and its event 12 "
                   "(run_started) there differs from the document's: the run went on in two "
                   "stores; nothing was imported. Import it into another store (--db)\n")


def test_a_run_the_store_holds_more_of_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'here.db'}"
    cancelled = full_run("r", status="cancelled")
    _store(db, _resumed(cancelled, ts=2_000.0))
    doc = _document(tmp_path, cancelled)
    code, _, err = _import(doc, db)
    assert code == 1
    assert err.startswith(f"error: {doc}: run r is in the trace store already, with more of "
                          "it (14 events) than the document (12); nothing was imported")
    assert _status(db) == "succeeded"


def test_a_run_running_in_the_store_is_not_added_to(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'here.db'}"
    cancelled = full_run("r", status="cancelled")
    _store(db, cancelled[:-1])  # no run_finished, no writer recorded: it may be running
    doc = _document(tmp_path, _resumed(cancelled, ts=2_000.0))
    code, _, err = _import(doc, db)
    assert code == 1
    assert err.startswith(f"error: {doc}: run r is running in the trace store now")
    result = CliRunner().invoke(app, ["export", "r", "--db", db])
    assert result.stdout.count('"seq"') == len(cancelled) - 1
