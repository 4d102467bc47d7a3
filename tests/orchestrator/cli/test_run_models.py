"""`ponder run --model NAME=FILE`: serve a model alias with a config from a file.

This is how a planner example's scripted outputs (``examples/planners/*.sim.yaml``) run
by hand on the simulated backend.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_cli import ponder
from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke

EXAMPLES = Path("examples") / "planners"


def test_a_planner_example_runs_by_hand_with_its_scripted_outputs() -> None:
    proc = ponder("run", str(EXAMPLES / "parallel_qa.yaml"), "--json",
                  "--model", f"default={EXAMPLES / 'parallel_qa.sim.yaml'}")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["output"] == {"answer": "8728859"}
    # the plan's look-ups ran as steps of their own
    assert {"answer__1", "answer__2", "answer__3", "answer__4"} <= {s["id"] for s in doc["steps"]}


def test_without_the_scripted_outputs_the_simulated_plan_is_malformed() -> None:
    # the override is what made the run above succeed: a bare simulated backend
    # writes no plan, and the planner step fails with its errors recorded
    proc = ponder("run", str(EXAMPLES / "parallel_qa.yaml"), "--backend", "simulated",
                  "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["status"] == "failed"


@pytest.mark.parametrize(("value", "content", "message"), [
    ("default", None, "must look like NAME=FILE"),
    ("default=missing.yaml", None, "cannot read missing.yaml"),
    ("default=FILE", "backend: [", "is not valid YAML"),
    ("default=FILE", "backend: simulated\nconcurrency: 0\n",
     "concurrency: Input should be greater than or equal to 1"),
    ("default=FILE", "backend: simulated\nspeed: 3\n", ":2:1: error: unknown field `speed`"),
    ("default=FILE", b"\xff\xfe", "is not UTF-8 text (byte 0)"),
])
def test_bad_model_overrides_are_named(tmp_path: Path, value: str, content: str | bytes | None,
                                       message: str) -> None:
    file = tmp_path / "model.yaml"
    if isinstance(content, bytes):
        file.write_bytes(content)
    elif content is not None:
        file.write_text(content)
    proc = ponder("run", "examples/quickstart.yaml", "--backend", "simulated",
                  "--model", value.replace("FILE", str(file)))
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_alias_the_workflow_does_not_declare_is_refused(tmp_path: Path) -> None:
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\nmodels:\n  fast: {backend: simulated}\nsteps:\n"
                  "  - {id: a, kind: llm, model: fast, prompt: hi}\n")
    model = tmp_path / "m.yaml"
    model.write_text("backend: simulated\n")
    proc = ponder("run", str(wf), "--model", f"fsat={model}")
    assert proc.returncode == 1
    assert "declares no model 'fsat' (models: fast)" in proc.stderr


#: a workflow whose model `m` the file configures wrongly for its own backend
BROKEN = ("name: t\nmodels:\n  m: {backend: simulated, options: {capacity: 0, colour: red}}\n"
          "steps:\n  - {id: a, kind: llm, model: m, prompt: hi}\n")


def _files(tmp_path: Path, workflow: str, **models: str) -> tuple[str, dict[str, str]]:
    (tmp_path / "w.yaml").write_text(workflow)
    paths = {}
    for name, text in models.items():
        (tmp_path / f"{name}.yaml").write_text(text)
        paths[name] = str(tmp_path / f"{name}.yaml")
    return str(tmp_path / "w.yaml"), paths


def test_a_model_the_command_line_replaces_is_not_checked_as_the_file_has_it(
        tmp_path: Path) -> None:
    wf, models = _files(tmp_path, BROKEN, good="backend: simulated\n")
    result = invoke("run", wf, "--db", "memory://", "--json", "--model", f"m={models['good']}")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"
    # without the override the file's options are refused, at their line
    error = error_of(invoke("run", wf, "--db", "memory://", "--json"), "workflow")
    assert [p["location"] for p in error["problems"]] == [f"{wf}:3:37", f"{wf}:3:50"]


@pytest.mark.parametrize("own", [
    "{backend: local, options: {n_ctx: -1}}",  # options for another backend: dropped
    "{backend: simulatd}",  # a backend the run does not use
])
def test_backend_runs_a_model_of_another_backend_without_checking_its_options(
        tmp_path: Path, own: str) -> None:
    sub = "name: s\nmodels:\n  m: " + own + "\nsteps:\n  - {id: b, kind: llm, model: m, prompt: x}\n"
    (tmp_path / "sub.yaml").write_text(sub)
    wf, _ = _files(tmp_path, "name: t\nmodels:\n  m: " + own + "\nsteps:\n"
                             "  - {id: a, kind: llm, model: m, prompt: hi}\n"
                             "  - {id: c, kind: workflow, workflow: sub.yaml}\n")
    result = invoke("run", wf, "--db", "memory://", "--json", "--backend", "simulated")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"


def test_backend_keeps_and_checks_the_options_of_a_model_already_on_it(tmp_path: Path) -> None:
    wf, _ = _files(tmp_path, BROKEN)
    error = error_of(invoke("run", wf, "--db", "memory://", "--json", "--backend",
                            "simulated"), "workflow")
    assert len(error["problems"]) == 2


def test_a_model_file_whose_options_its_backend_refuses_is_named_as_validate_words_it(
        tmp_path: Path) -> None:
    wf, models = _files(tmp_path, BROKEN, bad="backend: simulated\noptions: {capacity: 0}\n",
                        nope="backend: nope\n")
    error = error_of(invoke("run", wf, "--db", "memory://", "--json", "--model",
                            f"m={models['bad']}"), "config")
    # located as `ponder validate` locates it in a workflow's `models:` (it was FILE alone)
    assert error["message"] == (f"{models['bad']}:2:11: model 'm': simulated backend "
                                "options: capacity: Input should be greater than or equal to "
                                "1 (got 0)")
    assert error["location"] == f"{models['bad']}:2:11"
    error = error_of(invoke("run", wf, "--db", "memory://", "--json", "--model",
                            f"m={models['nope']}"), "config")
    assert error["message"].startswith(f"{models['nope']}:1:1: model 'm': unknown LLM "
                                       "backend 'nope' (installed backends: ")
    # under --backend the file's options are not the run's: nothing to refuse
    result = invoke("run", wf, "--db", "memory://", "--json", "--backend", "sim-engine",
                    "--model", f"m={models['bad']}")
    assert result.exit_code == 0, result.stderr
