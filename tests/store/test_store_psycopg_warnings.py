"""psycopg's warning about a pipeline it could not close after a failed statement does
not reach the user: the statement's own error is what the store reports.

``ponder import`` of a run already in a PostgreSQL store printed "error ignored
terminating <psycopg.AsyncPipeline [INERROR, pipeline=ON] ...>: pipeline aborted" on
stderr before its message, in about half the runs (when the pipeline's close met the
error)."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from orchestrator.store._runners import AsyncRunner

pytest.importorskip("psycopg")


def test_a_psycopg_store_drops_the_pipeline_abort_warning_only(
        caplog: pytest.LogCaptureFixture) -> None:
    runner = AsyncRunner(sa.make_url("postgresql+psycopg://u@127.0.0.1:1/db"), {})
    psycopg_log = logging.getLogger("psycopg")
    with caplog.at_level(logging.WARNING):
        psycopg_log.warning("error ignored terminating %r: %s",
                            "<psycopg.AsyncPipeline [INERROR, pipeline=ON]>", "pipeline aborted")
        psycopg_log.warning("connection %s lost", "c1")
    assert [r.getMessage() for r in caplog.records if r.name == "psycopg"] == [
        "connection c1 lost"]
    del runner
