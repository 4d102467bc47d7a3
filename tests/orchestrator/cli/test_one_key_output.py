"""The plain (not ``--json``) output of a run whose workflow declares no ``outputs:`` and
whose last step returns a one-key object: the object, key and all. It printed the value
alone (``gamma`` for ``{"name": "gamma"}``), as it prints a workflow's one declared
output; now that applies to declared outputs only, for `run`, `replay` and `resume`,
on every store backend."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from typer.testing import CliRunner, Result

from orchestrator import Workflow
from orchestrator.cli import app
from orchestrator.store import MemoryStore, StoreHook, open_store

UNDECLARED = """\
name: one
models:
  m: {backend: simulated}
steps:
  - id: a
    kind: llm
    model: m
    prompt: "Name a colour."
    output_schema:
      type: object
      properties: {name: {type: string}}
      required: [name]
"""
DECLARED = UNDECLARED + """\
outputs:
  name: ${steps.a.output.name}
"""


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _ran(tmp_path: Path, db: str, text: str) -> tuple[str, str]:
    """Run a workflow plainly and with ``--json``: the plain output, the run id."""
    (tmp_path / "wf.yaml").write_text(text)
    plain = ponder("run", str(tmp_path / "wf.yaml"), "--db", db)
    assert plain.exit_code == 0, plain.stderr
    doc = ponder("run", str(tmp_path / "wf.yaml"), "--db", db, "--json")
    assert doc.exit_code == 0, doc.stderr
    return plain.stdout, str(json.loads(doc.stdout)["run_id"])


def test_a_one_key_step_output_prints_whole(tmp_path: Path, db: str) -> None:
    plain, run_id = _ran(tmp_path, db, UNDECLARED)
    assert list(json.loads(plain)) == ["name"]
    replayed = ponder("replay", run_id, "--db", db)
    assert replayed.exit_code == 0, replayed.stderr
    assert list(json.loads(replayed.stdout)) == ["name"]
    forked = ponder("replay", run_id, "--from", "a", "--db", db)
    assert forked.exit_code == 0, forked.stderr
    assert list(json.loads(forked.stdout)) == ["name"]


def test_a_declared_single_output_prints_its_value_alone(tmp_path: Path, db: str) -> None:
    plain, run_id = _ran(tmp_path, db, DECLARED)
    assert plain.strip() and not plain.lstrip().startswith("{")
    replayed = ponder("replay", run_id, "--db", db)
    assert replayed.exit_code == 0, replayed.stderr
    assert replayed.stdout == plain


def _cut_run(tmp_path: Path, db: str, text: str) -> str:
    """A run of a workflow whose process died while its step ran, stored in ``db``."""
    (tmp_path / "wf.yaml").write_text(text)

    async def cut() -> str:
        memory = MemoryStore()
        done = await Workflow.from_yaml(tmp_path / "wf.yaml").run(hooks=[StoreHook(memory)])
        events = await memory.events(done.run_id)
        end = next(e.seq for e in events if e.kind == "step_started")
        store = await open_store(db)
        try:
            await store.append([e for e in events if e.seq <= end])
        finally:
            await store.close()
        return done.run_id

    return anyio.run(cut)


def test_a_resumed_run_prints_a_one_key_step_output_whole(tmp_path: Path, db: str) -> None:
    resumed = ponder("resume", _cut_run(tmp_path, db, UNDECLARED), "--db", db)
    assert resumed.exit_code == 0, resumed.stderr
    assert list(json.loads(resumed.stdout)) == ["name"]


def test_a_resumed_run_prints_a_declared_single_output_alone(tmp_path: Path,
                                                              db: str) -> None:
    resumed = ponder("resume", _cut_run(tmp_path, db, DECLARED), "--db", db)
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.strip() and not resumed.stdout.lstrip().startswith("{")
