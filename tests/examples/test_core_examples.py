"""Every core example runs on the simulated backend; the README's quickstart command runs on
the bundled local model."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import Workflow
from orchestrator.cli import app

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


def test_the_readme_quickstart_commands_run_as_shown(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command of the quickstart section runs (its runs on the simulated backend,
    `ponder view` left out: it serves until stopped), in a folder of its own; the run id
    the README shows stands for the first run's."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PONDER_DB_URL", f"sqlite:///{tmp_path / 'ponder.db'}")
    commands = readme_quickstart_console()
    shown_id = STATUS_LINE.fullmatch(commands[0][1][0]).group(2)  # type: ignore[union-attr]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
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
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (command, result.stderr, result.exception)
        if printed:  # the line on stderr and the outputs on stdout, as shown
            status = STATUS_LINE.search(result.stderr)
            assert status and status.group(1) == "succeeded", result.stderr
            assert set(json.loads(result.stdout)) == set(json.loads("\n".join(printed[1:])))
            run_id = run_id or status.group(2)
        if "--json" in args:  # the fields its comment lists, all of them
            listed = re.search(r"--json +# one JSON object: (.*)", readme)
            assert listed, "the --json line lists the object's fields"
            assert set(json.loads(result.stdout)) == set(listed.group(1).split(", ")), listed
        if args[0] == "replay":
            what = "fork" if "--from" in args else "replay"  # `ponder runs` says so too
            assert f"{what} of {run_id} recorded as run " in result.stderr, result.stderr
        if args[0] == "export":
            exported = json.loads((tmp_path / args[args.index("-o") + 1]).read_text())
            assert run_id in json.dumps(exported)[:2000]
    assert run_id


def example_header_commands() -> list[tuple[str, list[str]]]:
    """Each `ponder run` command an example's opening comment shows, with its file;
    one written inside a parenthesis (`...sim.yaml).`) without the closing marks."""
    found = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        if path.parent.name == "models":
            continue  # model configs, whose commands need a server: test_model_servers.py
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break  # the opening comment only
            text = line.lstrip("# ")
            if text.startswith("ponder run "):
                command = shlex.split(text, comments=True)
                command[-1] = command[-1].rstrip(".").rstrip(")")
                found.append((str(path.relative_to(ROOT)), command))
    return found


def test_the_examples_show_their_commands() -> None:
    shown = example_header_commands()
    assert len(shown) >= 15, shown
    # the scaling examples name the flag that runs them on the bundled model
    for path in sorted((ROOT / "examples" / "scaling").glob("*.yaml")):
        header = path.read_text(encoding="utf-8").split("\nname:", 1)[0]
        if "models:" in path.read_text(encoding="utf-8"):
            assert "`--backend local`" in header, path.name
            assert "set `backend: local`" not in header, path.name


@pytest.mark.parametrize(("example", "command"), example_header_commands(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_every_command_an_example_shows_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             example: str, command: list[str]) -> None:
    """As shown when its model is scripted (its file's, a `--model` file or `--backend
    simulated`): the run succeeds. A command for the bundled model runs on the simulated
    backend instead, where its inputs and options must be taken: the run starts."""
    assert command[:2] == ["ponder", "run"] and command[2] == example, command
    spec = Workflow.from_yaml(ROOT / example).spec
    scripted = ("--model" in command or "--backend" in command
                or any(m.backend == "simulated" for m in spec.models.values()))
    args = command[1:] if scripted else [*command[1:], "--backend", "simulated"]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [*args, "--json", "--db", "memory://"])
    doc = json.loads(result.stdout)
    assert doc["status"] != "error", doc["error"]
    if scripted:
        assert doc["status"] == "succeeded" and result.exit_code == 0, (doc["error"],
                                                                        result.stderr)
