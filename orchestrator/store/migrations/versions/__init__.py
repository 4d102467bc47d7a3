"""Revisions of the trace store schema, one file each (Alembic skips this file)."""
