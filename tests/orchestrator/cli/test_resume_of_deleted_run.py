"""`ponder resume` of a run that `ponder gc` deletes after the resume has read it, on
SQLite and PostgreSQL: the resume wrote the rest of the run, whose start was gone (a run
listed with no workflow's first events). It now writes nothing and says why, in one
line."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.store import open_store
from orchestrator.store._sql import SqlStore
from tests.orchestrator.cli.test_json_errors import ponder
from tests.orchestrator.cli.test_resume_finished import cancelled_run


def test_a_run_deleted_while_it_is_resumed_gets_nothing_more(
        tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = cancelled_run(tmp_path, db)
    read = SqlStore.events

    async def read_then_gc(self: SqlStore, rid: str, **kw: Any) -> list[Any]:
        events = await read(self, rid, **kw)
        if rid == run_id and not kw:  # the resume's read; `ponder gc`, right then
            await self.delete_runs([rid])
        return events

    monkeypatch.setattr(SqlStore, "events", read_then_gc)
    result = ponder("resume", run_id, "--db", db)
    monkeypatch.undo()
    assert result.exit_code == 1, result.stdout
    assert result.stderr == (
        f"error: run '{run_id}' is no longer in the trace store: it was deleted (by `ponder "
        "gc`, say) after it was read to go on with it; nothing more of it was written\n")

    async def stored() -> tuple[Collection[Any], Collection[Any]]:
        async with await open_store(db) as store:
            return await store.list_runs(), await store.events(run_id)

    assert anyio.run(stored) == ([], [])
