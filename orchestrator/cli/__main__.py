"""`python -m orchestrator.cli` is the `ponder` command."""

from orchestrator.cli.app import main

main()
