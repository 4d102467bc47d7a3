"""The core install works without any optional package.

CI installs every extra, so an import of an optional package at module level would go
unnoticed there and break the README's first command (``pip install -e ".[local]"``
and ``ponder run``) for users. Here each optional package is made unimportable in a
fresh interpreter and the everyday commands must still work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

#: every package Ponder's core may only import lazily, where the feature is used
OPTIONAL = ("fastapi", "uvicorn", "starlette", "llama_cpp", "vllm", "ray", "psycopg",
            "asyncpg", "playwright", "langgraph", "torch")

_RUN = """
import sys
for name in {optional!r}:
    sys.modules[name] = None  # `import name` now raises ImportError
from orchestrator.cli import main
sys.argv = ["ponder", *{args!r}]
main()
"""


def ponder_without_extras(*args: str) -> subprocess.CompletedProcess[str]:
    code = _RUN.format(optional=OPTIONAL, args=args)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args", [
    ("--help",),
    ("validate", "examples/quickstart.yaml"),
    ("run", "examples/quickstart.yaml", "--backend", "simulated", "--json"),
    ("plan", "parse", "-"),
], ids=["help", "validate", "run", "plan-parse"])
def test_commands_work_without_optional_packages(args: tuple[str, ...]) -> None:
    proc = ponder_without_extras(*args)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), proc.stderr  # plan parse of empty input fails cleanly


def test_the_run_succeeds_without_optional_packages() -> None:
    proc = ponder_without_extras("run", "examples/quickstart.yaml", "--backend", "simulated")
    assert proc.returncode == 0, proc.stderr


def test_view_without_fastapi_says_what_to_install() -> None:
    proc = ponder_without_extras("view", "--port", "0")
    assert proc.returncode == 2
    assert "needs FastAPI and uvicorn" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_viewer_package_imports_without_fastapi() -> None:
    code = ("import sys; sys.modules['fastapi'] = None; import orchestrator.viewer as v; "
            "print(v.TraceReader.__name__); v.create_app")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "TraceReader"
    assert proc.returncode == 1 and "import of fastapi halted" in proc.stderr  # on use only


def test_the_local_model_without_its_extra_says_what_to_install() -> None:
    proc = ponder_without_extras("run", "examples/quickstart.yaml")
    assert proc.returncode == 1
    assert "the local backend needs the extra `local`" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
