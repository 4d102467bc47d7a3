"""Workflows in two folders, each with `models:` of its own, that run each other (a
spawn's recursion, ended by max_depth): the model checks before a run found the one
file again by a longer path each time (a/one.yaml, a/../b/two.yaml,
a/../b/../a/one.yaml, ...), took it for another workflow whose models to check, and
`ponder run` never started. A file's models are now checked once, whatever path
reaches it."""

from __future__ import annotations

import subprocess
import sys
from itertools import islice
from pathlib import Path

from orchestrator.runtime.registry import Registry
from orchestrator.runtime.run_checks import run_workflows
from orchestrator.spec.loader import load_yaml

ONE = """\
name: {name}
models:
  default: {{backend: {backend}, options: {{time_scale: 0}}}}
steps:
  - {{id: a, kind: llm, prompt: hello}}
  - {{id: more, kind: spawn, messages: [x], workflow: {other}, max_depth: 2}}
"""


def _pair(tmp_path: Path, backend: str = "simulated") -> Path:
    for folder, name, other in (("a", "one", "../b/two.yaml"), ("b", "two", "../a/one.yaml")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{name}.yaml").write_text(
            ONE.format(name=name, backend=backend, other=other))
    return tmp_path / "a" / "one.yaml"


def test_each_file_comes_once_for_its_models(tmp_path: Path) -> None:
    file = _pair(tmp_path)
    spec, _ = load_yaml(file)
    found = list(islice(run_workflows(spec, file.parent, Registry.default(),
                                      shown_dir=Path("a")), 10))
    assert [(str(w.file) if w.file else None, w.spec.name) for w in found] == [
        (None, "one"), ("a/../b/two.yaml", "two"), ("a/../b/../a/one.yaml", "one")]


def test_ponder_run_starts(tmp_path: Path) -> None:
    file = _pair(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(file),
                           "--db", f"sqlite:///{tmp_path / 't.db'}", "--json"],
                          cwd=Path(__file__).resolve().parents[3], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"status": "succeeded"' in proc.stdout
