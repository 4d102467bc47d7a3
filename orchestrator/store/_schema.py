"""The trace store's tables, as the code queries them.

The migrations in ``migrations/versions`` create the same schema; a test checks
that the head migration and these definitions agree.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION_TABLE = "ponder_alembic_version"
"""Alembic's version table; named for Ponder so a shared database's own Alembic is untouched."""

METADATA = sa.MetaData(
    naming_convention={"ix": "ix_%(table_name)s_%(column_0_name)s", "pk": "pk_%(table_name)s"}
)

RUNS = sa.Table(
    "runs",
    METADATA,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("workflow", sa.String(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parent_run_id", sa.String(), nullable=True),
    sa.Column("parent_step_id", sa.String(), nullable=True),
    sa.Column("started_at", sa.Float(), nullable=False),
    sa.Column("finished_at", sa.Float(), nullable=True),
    sa.Column("duration_s", sa.Float(), nullable=True),
    sa.Column("prompt_tokens", sa.Integer(), nullable=True),
    sa.Column("completion_tokens", sa.Integer(), nullable=True),
    sa.Column("n_steps", sa.Integer(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("source", sa.Text(), nullable=True),
    sa.Column("parent_attempt", sa.Integer(), nullable=True),
    sa.Index(None, "started_at"),
    sa.Index(None, "workflow"),
    sa.Index(None, "status"),
    sa.Index(None, "parent_run_id"),
)

# The primary key (run_id, seq) is the unique constraint on an event's place in
# its run, and its index (led by run_id) serves every per-run read.
EVENTS = sa.Table(
    "events",
    METADATA,
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("step_id", sa.String(), nullable=True),
    sa.Column("ts", sa.Float(), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
)
