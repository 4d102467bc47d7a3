"""The `ponder` command line."""

from orchestrator.cli import store_cmds as _store_cmds  # noqa: F401  (registers commands)
from orchestrator.cli.app import app, main

__all__ = ["app", "main"]
