"""`python -m orchestrator.cli` is the `ponder` command."""

from orchestrator.cli import main

main()
