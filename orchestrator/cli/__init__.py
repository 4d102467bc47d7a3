"""The `ponder` command line.

This module is light: :func:`main` imports the commands (and everything they import,
about a second) under a handler of Ctrl-C, which otherwise printed a traceback and
no JSON document when it came during those imports.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.cli.commands import app

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from orchestrator.cli.commands import app

        return app
    raise AttributeError(f"module 'orchestrator.cli' has no attribute {name!r}")


def main() -> None:
    """Entry point of the `ponder` console script."""
    try:
        from orchestrator.cli.commands import main as run
    except KeyboardInterrupt:
        # as a Ctrl-C before a run started is reported (_failure.report), without
        # importing what it uses
        sys.stderr.write("interrupted\n")
        if "--json" in sys.argv[1:]:
            sys.stdout.write(json.dumps({"status": "error", "error": {
                "kind": "interrupted", "message": "interrupted", "location": None}}) + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        # (nothing has started to clean up; sys.exit could end with the signal's status
        # instead, where the interpreter saw the KeyboardInterrupt leave an import first)
        os._exit(130)
    run()
