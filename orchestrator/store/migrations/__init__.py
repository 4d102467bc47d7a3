"""Alembic migrations of the trace store, run by :func:`orchestrator.store.upgrade`.

There is no ``alembic.ini``: the configuration is built in code and the
connection is handed to ``env.py`` through ``config.attributes["connection"]``.
"""
