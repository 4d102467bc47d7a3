"""The `ponder` command line."""

from orchestrator.cli import store_cmds as _store_cmds  # noqa: F401  (registers commands)
from orchestrator.cli.app import app, main
from orchestrator.viewer.cli import view as _view

app.command(name="view")(_view)

__all__ = ["app", "main"]
