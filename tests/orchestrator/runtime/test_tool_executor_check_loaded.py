"""The check of a run's tool executor does not scan the installed entry points again for
an executor the registry holds already: ``ponder run --tool-executor`` checks (and loads)
it, then :meth:`Workflow.run` checks it again, and each scan cost ~13 ms."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

from executors.tool import ToolExecutor
from orchestrator.errors import ConfigError
from orchestrator.runtime.registry import Registry
from orchestrator.runtime.run_checks import check_tool_executor, tool_executor_problem


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The entry-point groups looked up from here on."""
    seen: list[str] = []
    real = importlib.metadata.entry_points

    def counting(**kwargs: Any) -> Any:
        seen.append(kwargs.get("group", ""))
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    return seen


def test_a_loaded_executor_is_checked_without_a_scan(scans: list[str]) -> None:
    registry = Registry()
    assert tool_executor_problem("tool", registry) is None  # loads it: one scan
    assert scans == ["ponder.executors"]
    check_tool_executor("tool", registry)
    check_tool_executor("tool", registry)
    assert scans == ["ponder.executors"]


def test_an_executor_registered_by_hand_needs_no_scan(scans: list[str]) -> None:
    registry = Registry(executors={"mine": ToolExecutor()})
    check_tool_executor("mine", registry)
    assert scans == []


def test_a_loaded_executor_of_another_step_kind_is_still_refused(scans: list[str]) -> None:
    registry = Registry()
    registry.executor("llm")
    with pytest.raises(ConfigError, match=r"tool_executor='llm': that executor runs llm "
                                          r"steps, not tool steps; installed for tool steps: "):
        check_tool_executor("llm", registry)


def test_an_unknown_executor_is_refused_after_a_scan(scans: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"tool_executor='nope': no such executor"):
        check_tool_executor("nope", Registry())
    assert scans == ["ponder.executors"]
