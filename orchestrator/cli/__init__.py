"""The `ponder` command line."""

from orchestrator.cli.app import app, main

__all__ = ["app", "main"]
