"""`ponder run --model NAME=FILE` for a workflow without `models:` is refused when no step
uses the alias NAME, naming the aliases it uses: it was silently ignored (the run went on
with the default model, not the one the file gives). Without `models:` a step's alias
other than `default` must be given by a --model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import error_of, one_line_error, ponder

SIM = "backend: simulated\noptions: {time_scale: 0}\n"


def _files(tmp_path: Path, flow: str) -> tuple[str, str]:
    (tmp_path / "t.yaml").write_text(flow)
    (tmp_path / "m.yaml").write_text(SIM)
    return str(tmp_path / "t.yaml"), str(tmp_path / "m.yaml")


@pytest.mark.parametrize(("flow", "given", "used"), [
    ("name: t\nsteps:\n  - {id: a, kind: llm, prompt: hi}\n", [], "(models used: default)"),
    # fast and slow are known through their --model: an alias no `models:` declares and
    # no --model gives is an unknown model (test_other_aliases_are_unknown)
    ("name: t\nsteps:\n  - {id: a, kind: llm, prompt: hi, model: fast}\n"
     "  - {id: b, kind: map, over: [1], step: {kind: llm, prompt: x, model: slow}}\n",
     ["fast", "slow"], "(models used: fast, slow)"),
    ("name: t\nsteps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}\n", [],
     "(it uses no model)"),
])
def test_an_alias_no_step_uses_is_refused(tmp_path: Path, flow: str, given: list[str],
                                          used: str) -> None:
    file, model = _files(tmp_path, flow)
    args = [arg for name in [*given, "fancy"] for arg in ("--model", f"{name}={model}")]
    message = (f"--model fancy: {file} declares no models and no step uses model 'fancy' "
               f"{used}")
    one_line_error(ponder("run", file, "--db", "memory://", *args), message)
    error = error_of(ponder("run", file, "--db", "memory://", "--json", *args), "usage")
    assert error["message"] == message


@pytest.mark.parametrize("flow", [
    "name: t\nsteps:\n  - {id: a, kind: llm, prompt: hi, model: fancy}\n",
    "name: t\nsteps:\n  - {id: a, kind: map, over: [1], step: {kind: llm, prompt: x, "
    "model: fancy}}\n",
])
def test_an_alias_a_step_uses_serves_it(tmp_path: Path, flow: str) -> None:
    file, model = _files(tmp_path, flow)
    result = ponder("run", file, "--db", "memory://", "--json", "--model", f"fancy={model}")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["status"] == "succeeded"


FAST = """\
backend: simulated
options: {time_scale: 0, responses: [{match: "", output: FAST}]}
"""
TWO_ALIASES = """\
name: t
steps:
  - {id: a, kind: llm, prompt: hi, model: fast}
  - {id: b, kind: llm, prompt: hi, model: slow}
outputs: {a: "${steps.a.output}", b: "${steps.b.output}"}
"""


def test_aliases_each_given_serve_their_steps(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(TWO_ALIASES)
    (tmp_path / "fast.yaml").write_text(FAST)
    # two aliases, each checked against the workflow's, not against the first one given
    args = [arg for name in ("fast", "slow")
            for arg in ("--model", f"{name}={tmp_path / 'fast.yaml'}")]
    result = ponder("run", str(tmp_path / "t.yaml"), "--db", "memory://", "--json",
                    "--backend", "simulated", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["output"] == {"a": "FAST", "b": "FAST"}


@pytest.mark.parametrize("given", [["fast"], ["default"]])
def test_other_aliases_are_unknown(tmp_path: Path, given: list[str]) -> None:
    """Without `models:` an alias that no --model gives is an unknown model, as with
    `models:` (it ran on the bundled model): --model default serves `default` only."""
    (tmp_path / "t.yaml").write_text(TWO_ALIASES)
    (tmp_path / "fast.yaml").write_text(FAST)
    args = [arg for name in given for arg in ("--model", f"{name}={tmp_path / 'fast.yaml'}")]
    result = ponder("run", str(tmp_path / "t.yaml"), "--db", "memory://",
                    "--backend", "simulated", *args)
    assert result.exit_code == 1
    assert f"{tmp_path / 't.yaml'}:4:36: error: unknown model 'slow'" in result.stderr, \
        result.stderr
