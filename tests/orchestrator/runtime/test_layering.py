"""The runtime does not import the layers built on it (the SDK, the CLI, the viewer):
resume and replay refuse what a run refuses in the words of
:mod:`orchestrator.runtime.run_checks`, which the SDK uses too."""

from __future__ import annotations

import ast
from pathlib import Path

import orchestrator.runtime

RUNTIME = Path(orchestrator.runtime.__file__).parent
ABOVE = ("orchestrator.sdk", "orchestrator.cli", "orchestrator.viewer")


def _imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            if node.module == "orchestrator":
                names |= {f"orchestrator.{alias.name}" for alias in node.names}
    return names


def test_runtime_imports_nothing_above_it() -> None:
    found = {f"{path.name}: {name}"
             for path in sorted(RUNTIME.rglob("*.py"))
             for name in _imported(path)
             if any(name == up or name.startswith(up + ".") for up in ABOVE)}
    assert not found, f"runtime modules importing a layer above the runtime: {sorted(found)}"


def test_sdk_names_the_runtime_checks() -> None:
    """``sdk.as_hook``, ``sdk.check_backend``, ``sdk.backend_problem`` are the runtime's
    (one wording for a run, a resume and a replay), still importable from the SDK."""
    from orchestrator import sdk
    from orchestrator.runtime import run_checks

    for name in ("AnyHook", "as_hook", "check_backend", "backend_problem"):
        assert getattr(sdk, name) is getattr(run_checks, name)
