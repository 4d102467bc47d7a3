"""Every core example runs on the simulated backend; the README's quickstart command runs on
the bundled local model."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import Workflow

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


async def test_quickstart_runs_its_subquestions_in_parallel() -> None:
    wf = Workflow.from_yaml(ROOT / "examples" / "quickstart.yaml")
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}

    async def timing(batch: list) -> None:  # type: ignore[type-arg]
        for e in batch:
            if e.kind == "step_started":
                starts[e.step_id] = e.ts
            if e.kind == "step_succeeded":
                ends[e.step_id] = e.ts

    result = await wf.run({"spiders": 2, "ants": 5}, backend="simulated", hooks=[timing])
    assert result.ok, result.error
    assert result.output["total_legs"] == 2 * 8 + 5 * 6
    assert isinstance(result.output["answer"], str) and result.output["answer"]
    subs = ["spider_fact", "ant_fact", "why_count"]
    assert max(starts[s] for s in subs) < min(ends[s] for s in subs)  # overlapping
    assert starts["answer"] >= max(ends[s] for s in [*subs, "total_legs"])


async def test_map_example_fans_out_over_its_input() -> None:
    wf = Workflow.from_yaml(ROOT / "examples" / "map_fanout.yaml")
    result = await wf.run({"topics": ["a", "b", "c", "d"]}, backend="simulated")
    assert result.ok, result.error
    assert len(result.output["explanations"]) == 4
    assert sum(1 for s in result.steps if s.id.startswith("explain[")) == 4


def test_sdk_script_runs() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "sdk_agent.py"), "simulated"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "succeeded" in proc.stdout and "'words':" in proc.stdout


def readme_quickstart_command() -> list[str]:
    """The command the README's first set-up line runs after installing Ponder."""
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if '".[local]"' in line and "&&" in line:
            return shlex.split(line.split("&&", 1)[1])
    raise AssertionError("README.md has no `pip install ... && ponder run ...` line")


def test_the_readme_quickstart_runs_on_the_bundled_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    command = readme_quickstart_command()
    assert command[:2] == ["ponder", "run"], command
    db = f"sqlite:///{tmp_path / 'ponder.db'}"

    def ponder(*args: str) -> dict:  # type: ignore[type-arg]
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args, "--json",
                               "--db", db], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    doc = ponder(*command[1:])
    assert doc["status"] == "succeeded"
    assert doc["output"]["total_legs"] == 3 * 8 + 2 * 6  # the exact tool step, defaults
    assert isinstance(doc["output"]["answer"], str) and doc["output"]["answer"].strip()
    shown = ponder("show", doc["run_id"])
    llm_steps = [s for s in shown["steps"] if s["kind"] == "llm"]
    assert len(llm_steps) == 4
    for step in llm_steps:  # answered by the bundled model, not a stand-in
        assert step["meta"]["backend"] == "local", step
        assert step["meta"]["model"].startswith("SmolLM2-135M-Instruct"), step
        assert step["completion_tokens"] > 0, step


def readme_quickstart_console() -> list[tuple[list[str], list[str]]]:
    """Each `$ ` command of the README's quickstart section (its comment left out), with
    the lines the README shows it printing."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## The quickstart\n", 1)[1].split("\n## ", 1)[0]
    shown: list[tuple[list[str], list[str]]] = []
    for block in re.findall(r"^```console\n(.*?)^```", section, flags=re.S | re.M):
        for line in block.splitlines():
            if line.startswith("$ "):
                shown.append((shlex.split(line[2:], comments=True), []))
            else:
                shown[-1][1].append(line)
    return shown


STATUS_LINE = re.compile(r"(succeeded|failed|cancelled) run ([0-9a-f]{16}) in [0-9.]+s, "
                         r"tokens [0-9]+\+[0-9]+")


def test_the_readme_quickstart_section_shows_what_a_run_prints_and_how_to_look_at_it() -> None:
    commands = readme_quickstart_console()
    (first, printed), *rest = commands
    assert first == ["ponder", "run", "examples/quickstart.yaml"]
    assert STATUS_LINE.fullmatch(printed[0]), printed
    assert set(json.loads("\n".join(printed[1:]))) == {"answer", "total_legs"}
    shown_id = STATUS_LINE.fullmatch(printed[0]).group(2)  # type: ignore[union-attr]
    later = {command[1] for command, _ in rest if command[:1] == ["ponder"]}
    assert {"show", "replay", "export", "view"} <= later, later
    for command, _ in rest:  # each names the run by the shown run's id (or a start of it)
        ids = [a for a in command if re.fullmatch(r"[0-9a-f]{8,16}", a)]
        assert all(shown_id.startswith(a) for a in ids), command


def test_the_readme_quickstart_commands_run_as_shown(tmp_path: Path) -> None:
    """Every command of the quickstart section runs (its runs on the simulated backend,
    `ponder view` left out: it serves until stopped), in a folder of its own; the run id
    the README shows stands for the first run's."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    db = f"sqlite:///{tmp_path / 'ponder.db'}"
    env = {**os.environ, "PONDER_DB_URL": db, "PYTHONPATH": str(ROOT)}
    commands = readme_quickstart_console()
    shown_id = STATUS_LINE.fullmatch(commands[0][1][0]).group(2)  # type: ignore[union-attr]
    run_id = ""
    for command, printed in commands:
        assert command[0] == "ponder", command
        if command[1] == "view":
            continue
        args = [a.replace(shown_id[:len(a)], run_id[:len(a)])
                if run_id and shown_id.startswith(a) and len(a) >= 8 else a
                for a in command[1:]]
        if args[0] == "run" and "--backend" not in args:
            args += ["--backend", "simulated"]
        proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (command, proc.stderr)
        if printed:  # the line on stderr and the outputs on stdout, as shown
            status = STATUS_LINE.search(proc.stderr)
            assert status and status.group(1) == "succeeded", proc.stderr
            assert set(json.loads(proc.stdout)) == set(json.loads("\n".join(printed[1:])))
            run_id = run_id or status.group(2)
        if args[0] == "replay":
            assert f"replay of {run_id} recorded as run " in proc.stderr, proc.stderr
        if args[0] == "export":
            exported = json.loads((tmp_path / args[args.index("-o") + 1]).read_text())
            assert run_id in json.dumps(exported)[:2000]
    assert run_id
