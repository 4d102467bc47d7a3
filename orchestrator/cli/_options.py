"""Checks of options that several commands share, the viewer's among them (which is why
they are not in :mod:`orchestrator.cli.commands`: the viewer's command module is
imported by it)."""

from __future__ import annotations

import typer

from orchestrator.errors import shown


def store_given(value: str | None) -> str | None:
    """``--db``'s value, refused when empty: it read as not given, and the command used
    the default store (``--db "$UNSET"``: ``ponder gc`` deleted runs there)."""
    if value is not None and not value.strip():
        raise typer.BadParameter(f"{shown(value)} names no store: give a URL or a SQLite "
                                 "file, or leave --db out for the default (PONDER_DB_URL "
                                 "or ~/.ponder/ponder.db)")
    return value
