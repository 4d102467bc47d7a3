"""ARCHITECTURE.md: imports go one way only. `planners/` and `executors/` import the
contracts of `orchestrator/`; `orchestrator/` never imports them (it finds them through
the registry and entry points). A check that reads every module of `orchestrator/`, so a
shortcut (even one inside a function) fails here rather than in review."""

from __future__ import annotations

import ast
from pathlib import Path

import orchestrator

ROOT = Path(orchestrator.__file__).parent
FORBIDDEN = ("executors", "planners")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_orchestrator_imports_no_executor_or_planner() -> None:
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) > 20  # the package itself, not an empty folder
    wrong = [f"{path.relative_to(ROOT.parent)}:{line}: imports {name}"
             for path in files
             for line, name in _imported(ast.parse(path.read_text(encoding="utf-8")))
             if name.split(".")[0] in FORBIDDEN]
    assert wrong == []


def test_the_check_sees_an_import_inside_a_function() -> None:
    tree = ast.parse("def f():\n    from executors.engines.pool import PoolOptions\n")
    assert _imported(tree) == [(2, "executors.engines.pool")]
