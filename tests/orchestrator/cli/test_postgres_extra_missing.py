"""`--db postgresql+psycopg://...` (or `+asyncpg`) with Ponder installed without its
`postgres` extra: one line naming the extra and how to install it, exit 1 (a config
error); it was "internal error: ModuleNotFoundError: No module named 'psycopg'", exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

_RUN = """
import sys
sys.modules[{module!r}] = None  # `import {module}` now raises ImportError
from orchestrator.cli import main
sys.argv = ["ponder", *{args!r}]
main()
"""


def _without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _RUN.format(module=module, args=args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("url", "module"), [
    ("postgresql+psycopg://u@127.0.0.1:9/db", "psycopg"),
    ("postgresql+asyncpg://u@127.0.0.1:9/db", "asyncpg"),
])
def test_a_missing_postgres_driver_says_which_extra_to_install(url: str, module: str) -> None:
    proc = _without(module, "runs", "--db", url)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ")
    assert f"needs the extra `postgres` ({module} is not installed)" in line
    assert 'pip install -e ".[postgres]"' in line


def test_a_missing_postgres_driver_is_a_config_error_in_json() -> None:
    proc = _without("psycopg", "runs", "--db", "postgresql+psycopg://u@127.0.0.1:9/db",
                    "--json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["error"]["kind"] == "config"
