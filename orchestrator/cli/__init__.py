"""The `ponder` command line."""

from orchestrator.cli import store_cmds as _store_cmds  # noqa: F401  (registers commands)
from orchestrator.cli.app import app, main
from orchestrator.cli.plan_cmd import plan_app
from orchestrator.viewer.cli import view as _view

app.command(name="view")(_view)
app.add_typer(plan_app, name="plan")

__all__ = ["app", "main"]
