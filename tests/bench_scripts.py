"""Runs a script of bench/ in this process, the way `python bench/NAME.py ARGS` would."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_bench(name: str, argv: list[str]) -> Any:
    """Load bench/<name>.py as module `name` and return what its `main(argv)` returns."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        return module.main(argv)
    finally:
        sys.modules.pop(name, None)
