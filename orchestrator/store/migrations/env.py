"""Alembic environment: runs migrations on the connection Ponder passes in.

Online only, with the caller's connection and transaction (the caller commits);
see :mod:`orchestrator.store._migrate`.
"""

from __future__ import annotations

from alembic import context

from orchestrator.store._schema import METADATA, VERSION_TABLE

_connection = context.config.attributes.get("connection")
if _connection is None:
    raise RuntimeError(
        "Ponder's migrations run through orchestrator.store.upgrade() or "
        "`ponder db upgrade`, which pass a connection; there is no alembic.ini"
    )

context.configure(
    connection=_connection,
    target_metadata=METADATA,
    version_table=VERSION_TABLE,
    render_as_batch=_connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
