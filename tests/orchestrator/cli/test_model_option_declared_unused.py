"""`ponder run --model NAME=FILE` for an alias the workflow declares under `models:` but
no step of it uses is refused, naming the aliases its steps use: it was accepted without a
word and served nothing. A sub-workflow's steps use its own file's models; a plan step's
``joiner_model`` is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import error_of, one_line_error, ponder

SIM = "backend: simulated\noptions: {time_scale: 0}\n"
DECLARED = """\
models:
  fast: {backend: simulated, options: {time_scale: 0}}
  slow: {backend: simulated, options: {time_scale: 0}}
"""
CHILD = "name: child\n" + DECLARED + "steps:\n  - {id: a, kind: llm, prompt: hi, model: slow}\n"


@pytest.mark.parametrize(("flow", "name", "said"), [
    ("name: t\n" + DECLARED + "steps:\n  - {id: a, kind: llm, prompt: hi, model: fast}\n",
     "slow", "declares model 'slow' but no step uses it (models used: fast)"),
    ("name: t\n" + DECLARED + "steps:\n  - {id: a, kind: llm, prompt: hi, model: fast}\n",
     "default", "has no step that uses model 'default' (models used: fast)"),
    ("name: t\n" + DECLARED + "steps:\n  - {id: a, kind: tool, tool: calc, "
     "args: {expression: '1'}}\n", "fast", "declares model 'fast' but no step uses it "
     "(it uses no model)"),
    # the child's step uses the child's `slow`, not this file's
    ("name: t\n" + DECLARED + "steps:\n  - {id: a, kind: llm, prompt: hi, model: fast}\n"
     "  - {id: b, kind: workflow, workflow: child.yaml}\n",
     "slow", "declares model 'slow' but no step uses it (models used: fast)"),
])
def test_a_declared_alias_no_step_uses_is_refused(tmp_path: Path, flow: str, name: str,
                                                  said: str) -> None:
    (tmp_path / "t.yaml").write_text(flow)
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "m.yaml").write_text(SIM)
    file, model = str(tmp_path / "t.yaml"), str(tmp_path / "m.yaml")
    message = f"--model {name}: {file} {said}"
    one_line_error(ponder("run", file, "--db", "memory://", "--model", f"{name}={model}"),
                   message)
    error = error_of(ponder("run", file, "--db", "memory://", "--json",
                            "--model", f"{name}={model}"), "usage")
    assert error["message"] == message


PLANNER = """\
backend: simulated
options:
  time_scale: 0
  responses:
    - {match: ".", output: "1. calc(\\"1 + 2\\")\\n2. join()\\n<END_OF_PLAN>"}
"""
JUDGE = """\
backend: simulated
options:
  time_scale: 0
  responses:
    - {match: ".", output: '{"action": "finish", "answer": "JUDGED $1"}'}
"""
PLANNED = """\
name: t
models:
  default: {backend: simulated, options: {time_scale: 0}}
  judge: {backend: simulated, options: {time_scale: 0}}
steps:
  - {id: p, kind: plan, planner: llmcompiler, goal: add, tools: [calc], joiner_model: judge}
"""


def test_a_plans_joiner_model_is_used(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(PLANNED)
    (tmp_path / "planner.yaml").write_text(PLANNER)
    (tmp_path / "judge.yaml").write_text(JUDGE)
    result = ponder("run", str(tmp_path / "t.yaml"), "--db", "memory://", "--json",
                    "--model", f"default={tmp_path / 'planner.yaml'}",
                    "--model", f"judge={tmp_path / 'judge.yaml'}")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["output"] == "JUDGED 3"
