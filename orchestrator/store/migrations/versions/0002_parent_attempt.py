"""runs.parent_attempt: which runs a step of another run started.

A sub-workflow's run, a fork and a replay all name another run as their parent; only
the first is started by one of its steps, whose attempt its ``run_started`` records.
The column copies that field, so that listing the top-level runs (the forks and
replays among them) needs no read of the events. Existing rows get it from their
run's first ``run_started``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 500


def _attempt(payload: Any) -> int | None:
    """The ``parent_attempt`` of a ``run_started`` payload (JSON text on SQLite, already
    decoded on PostgreSQL); ``None`` where it is missing or not a whole number."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    value = payload.get("parent_attempt") if isinstance(payload, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_attempt", sa.Integer(), nullable=True))
    runs = sa.table("runs", sa.column("id"), sa.column("parent_run_id"),
                    sa.column("parent_attempt"))
    events = sa.table("events", sa.column("run_id"), sa.column("seq"), sa.column("kind"),
                      sa.column("payload"))
    children = sa.select(runs.c.id).where(runs.c.parent_run_id.is_not(None))
    first = (
        sa.select(events.c.run_id, sa.func.min(events.c.seq).label("seq"))
        .where(events.c.kind == "run_started", events.c.run_id.in_(children))
        .group_by(events.c.run_id)
        .subquery()
    )
    rows = sa.select(events.c.run_id, events.c.payload).join(
        first, sa.and_(events.c.run_id == first.c.run_id, events.c.seq == first.c.seq))
    bind = op.get_bind()
    found = [{"rid": run_id, "attempt": attempt} for run_id, payload in bind.execute(rows)
             if (attempt := _attempt(payload)) is not None]
    change = (sa.update(runs).where(runs.c.id == sa.bindparam("rid"))
              .values(parent_attempt=sa.bindparam("attempt")))
    for i in range(0, len(found), _BATCH):
        bind.execute(change, found[i:i + _BATCH])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("parent_attempt")
