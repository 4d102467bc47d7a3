"""A run whose models' ``options:`` their backend refuses (a pool member's, built-in or
registered with ``Workflow.register_backend``) is refused when it starts, with every
problem and the member named, before anything is recorded. Only ``ponder validate``
reported them: the run failed its LLM steps at run time instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator import ConfigError, Workflow
from orchestrator.cli import app
from orchestrator.store import StoreHook, TraceStore
from tests.fakes import Echo

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the stores run on a real clock


def _workflow(*members: dict[str, Any]) -> Workflow:
    wf = Workflow("t", models={"default": {"backend": "pool", "options": {
        "shared": False, "members": list(members)}}})
    wf.register_backend("echo", Echo)
    wf.llm("a", "hi")
    return wf


async def test_bad_member_options_refuse_the_run_before_it_is_recorded(
        trace_store: TraceStore) -> None:
    wf = _workflow({"backend": "sim-engine", "name": "fast", "options": {"kv_blocks": -1}},
                   {"backend": "echo", "name": "mine", "options": {"prefx": "x"}})
    with pytest.raises(ConfigError) as caught:
        await wf.run(hooks=[StoreHook(trace_store)])
    message = str(caught.value)
    # both problems at once, each naming its model and member
    assert message.startswith(
        "model 'default': pool backend options: member 'fast': sim-engine backend options: "
        "kv_blocks: Input should be greater than or equal to 1 (got -1); "
        "model 'default': pool backend options: member 'mine': echo backend options: "
        "unknown option 'prefx'"), message
    assert "\n" not in message
    assert list(await trace_store.list_runs()) == []


async def test_good_member_options_run() -> None:
    result = await _workflow({"backend": "echo", "options": {"prefix": "hey"}}).run()
    assert result.ok, result.error
    assert result.output == "hey"


async def test_a_model_under_another_backend_is_not_checked_against_its_options() -> None:
    wf = _workflow({"backend": "echo", "name": "mine", "options": {"prefx": "x"}})
    result = await wf.run(backend="simulated")  # the pool's options are not used
    assert result.ok, result.error


def test_ponder_run_reports_a_bad_member_option_once_at_its_line(tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text(
        "name: t\n"
        "models:\n"
        "  default:\n"
        "    backend: pool\n"
        "    options:\n"
        "      members:\n"
        "        - backend: sim-engine\n"
        "          name: fast\n"
        "          options: {kv_blocks: -1}\n"
        "steps:\n"
        "  - {id: a, kind: llm, prompt: hi}\n")
    result = CliRunner().invoke(app, ["run", str(file), "--db", "memory://", "--json"])
    assert result.exit_code != 0
    error = json.loads(result.stdout)["error"]
    text = json.dumps(error)
    # validation reports it at its line; the run's own check does not say it again
    assert text.count("kv_blocks") == 1, error
    assert "member 'fast'" in text
