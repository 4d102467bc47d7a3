"""``Workflow.run(backend=...)`` refuses a backend that is not installed with a
ConfigError before the run starts (no event, so no stored run), in the words of
``ponder run --backend``: it returned a failed run whose steps said "unknown LLM backend"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from orchestrator.errors import ConfigError
from orchestrator.runtime.registry import Registry
from orchestrator.sdk import Workflow, backend_problem


def _workflow() -> Workflow:
    wf = Workflow("w")
    wf.llm("a", "hi")
    return wf


def _installed() -> str:
    return ", ".join(sorted(Registry.default().backend_names()))


def test_run_sync_refuses_a_misspelt_backend_before_any_event() -> None:
    events: list[Any] = []

    def hook(batch: Sequence[Any]) -> None:
        events.extend(batch)

    with pytest.raises(ConfigError) as info:
        _workflow().run_sync(backend="simulatd", hooks=[hook])
    assert str(info.value) == f"backend='simulatd': unknown LLM backend; installed: {_installed()}"
    assert events == []


@pytest.mark.anyio
async def test_run_refuses_a_backend_that_is_not_a_name() -> None:
    with pytest.raises(ConfigError, match=r"^backend=\['simulated'\]: unknown LLM backend"):
        await _workflow().run(backend=["simulated"])  # type: ignore[arg-type]


def test_as_tool_refuses_a_misspelt_backend_when_made() -> None:
    with pytest.raises(ConfigError, match="unknown LLM backend"):
        _workflow().as_tool("t", backend="simulatd")


def test_a_registered_backend_is_accepted() -> None:
    wf = _workflow()
    assert backend_problem("simulated", wf.registry) is None
    assert backend_problem(None, wf.registry) is None
    wf.register_backend("mine", lambda config: None)
    assert backend_problem("mine", wf.registry) is None
    assert _workflow().run_sync(backend="simulated").ok


def test_the_cli_says_the_same() -> None:
    from orchestrator.cli.commands import _check_backend

    with pytest.raises(Exception) as info:
        _check_backend("simulatd", Registry.default())
    assert str(info.value) == ("--backend 'simulatd': "
                               + (backend_problem("simulatd", Registry.default()) or ""))
