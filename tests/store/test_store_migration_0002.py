"""Revision 0002 copies each run's ``parent_attempt`` into the runs table, so that the
top-level runs (forks and replays among them, no sub-workflow's run) are one query. A
store written before it gets the column filled from its runs' ``run_started`` events."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from orchestrator.store import RunFilter, SqlStore, _migrate
from tests.store.conftest import full_run
from tests.store.test_store_sql import sync_engine, version_of

pytestmark = pytest.mark.anyio


def _downgrade_to_0001(url: str) -> None:
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(_migrate.alembic_config(conn), "0001")
            columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
            assert "parent_attempt" not in columns
    finally:
        engine.dispose()


def _replay_of(parent: str, run_id: str) -> list[Any]:
    """A replay: its parent is the run it replays, with neither a step nor an attempt."""
    events = full_run(run_id, started=1_004.0, parent_run_id=parent)
    events[0] = events[0].model_copy(update={"parent_step_id": None})
    return events


async def test_an_older_store_gets_parent_attempt_from_its_events(sql_url: str) -> None:
    async with SqlStore(sql_url) as store:
        await store.append(full_run("top", started=1_000.0))
        await store.append(full_run("sub", started=1_001.0, parent_run_id="top",
                                    parent_attempt=2))
        await store.append(full_run("fork", started=1_002.0, parent_run_id="top"))
        await store.append(full_run("plain", started=1_003.0))
        await store.append(_replay_of("top", "again"))
    _downgrade_to_0001(sql_url)
    assert version_of(sql_url) == "0001"

    async with SqlStore(sql_url, auto_upgrade=True) as store:
        assert version_of(sql_url) == _migrate.head_revision()
        rows = {r.id: (r.parent_run_id, r.parent_step_id, r.parent_attempt)
                for r in await store.list_runs()}
        assert rows == {"top": (None, None, None), "sub": ("top", "p", 2),
                        "fork": ("top", "p", None), "plain": (None, None, None),
                        "again": ("top", None, None)}
        top = [r.id for r in await store.list_runs(RunFilter(top_level=True))]
        assert top == ["again", "plain", "fork", "top"]
        # the gc's and resume's tests read the column: a sub-workflow's run is its
        # parent's, a fork is a run of its own
        assert [r.id for r in await store.list_runs(RunFilter(parent_run_id="top"))] == [
            "again", "fork", "sub"]


async def test_a_store_made_at_head_records_parent_attempt(sql_url: str) -> None:
    async with SqlStore(sql_url) as store:
        await store.append(full_run("top"))
        await store.append(full_run("sub", started=1_001.0, parent_run_id="top",
                                    parent_attempt=1))
        info = await store.run_info("sub")
        assert info is not None and info.parent_attempt == 1
        assert (await store.read_run("sub")).parent_attempt == 1
        assert [r.id for r in await store.list_runs(RunFilter(top_level=True))] == ["top"]
