"""Compile and validate workflows into DAGs (pure, no I/O)."""
