"""``python -m orchestrator.viewer``: ``ponder view`` without the rest of the CLI."""

import typer

from orchestrator.viewer.cli import view

if __name__ == "__main__":
    typer.run(view)
