"""The `ponder` command line."""

from orchestrator.cli import store_cmds as _store_cmds  # noqa: F401  (registers commands)
from orchestrator.cli.app import app, main
from orchestrator.cli.plan_cmd import plan_app
from orchestrator.viewer.cli import view as _view

# the list of commands shows a one-line summary (the docstring's first paragraph would be
# shown with its line breaks)
app.command(name="view", short_help="Serve the web viewer of the trace store's runs.")(_view)
app.add_typer(plan_app, name="plan")

__all__ = ["app", "main"]
