"""A fork (``replay(from_step=...)``) runs its tool steps on the executor the run
recorded (``--tool-executor``), as :func:`resume` does, unless told another, and its own
run_started records it: it ran them on the default executor. A replay without
``from_step`` runs no tool step: the recorded executor is neither needed nor checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import ConfigError
from orchestrator.runtime.durable import replay
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.test_resume_tool_executor import (
    BAD_TOOL_EXECUTORS,
    CountingToolExecutor,
    _registry,
    _started,
    whole_run,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _fork(events: list[Any], counting: CountingToolExecutor,
                **kwargs: Any) -> tuple[Any, list[Any]]:
    """A fork of ``events`` from `b`: its result and its run_started events."""
    store = MemoryStore()
    result = await replay(events, registry=_registry(counting), hooks=[StoreHook(store)],
                          from_step="b", **kwargs)
    return result, _started(list(await store.events(result.run_id)))


async def test_a_fork_runs_tool_steps_on_the_recorded_executor(tmp_path: Path) -> None:
    events = await whole_run(tmp_path, "counting")
    counting = CountingToolExecutor()
    result, started = await _fork(events, counting)
    assert result.ok and result.output == {"b": 3}
    assert counting.ran == ["b"]  # on the recorded executor, not the default one
    assert [e.tool_executor for e in started] == ["counting"]


async def test_a_tool_executor_given_to_a_fork_wins_over_the_recorded_one(
        tmp_path: Path) -> None:
    events = await whole_run(tmp_path, "counting")
    counting = CountingToolExecutor()
    result, started = await _fork(events, counting, tool_executor="tool")
    assert result.ok and result.output == {"b": 3}
    assert counting.ran == []
    assert [e.tool_executor for e in started] == ["tool"]
    # and the other way round: a run on the default forked onto another executor
    events = await whole_run(tmp_path, None)
    result, started = await _fork(events, counting, tool_executor="counting")
    assert result.ok and counting.ran == ["b"]
    assert [e.tool_executor for e in started] == ["counting"]


async def test_a_run_without_a_recorded_tool_executor_forks_on_the_default(
        tmp_path: Path) -> None:
    events = await whole_run(tmp_path, None)
    counting = CountingToolExecutor()
    result, started = await _fork(events, counting)
    assert result.ok and counting.ran == []
    assert [e.tool_executor for e in started] == [None]


@pytest.mark.parametrize(("given", "problem"), BAD_TOOL_EXECUTORS)
async def test_a_tool_executor_a_fork_cannot_use_is_refused_before_anything_is_recorded(
        tmp_path: Path, given: str, problem: str) -> None:
    events = await whole_run(tmp_path, "counting")
    store = MemoryStore()
    for from_step in ("b", None):  # also a replay: the executor given is checked
        with pytest.raises(ConfigError) as caught:
            await replay(events, registry=_registry(CountingToolExecutor()),
                         hooks=[StoreHook(store)], from_step=from_step, tool_executor=given)
        assert str(caught.value) == f"tool_executor={given!r}: {problem}"
    recorded = [events[0].model_copy(update={"tool_executor": given}), *events[1:]]
    with pytest.raises(ConfigError) as caught:
        await replay(recorded, registry=_registry(CountingToolExecutor()),
                     hooks=[StoreHook(store)], from_step="b")
    assert str(caught.value) == f"the run's recorded tool_executor={given!r}: {problem}"
    assert await store.list_runs() == []


async def test_a_replay_without_from_step_needs_no_recorded_executor(tmp_path: Path) -> None:
    """It serves every step from the trace: a recorded executor not installed here does
    not stop it, and it records none; one given is recorded."""
    events = await whole_run(tmp_path, "counting")
    recorded = [events[0].model_copy(update={"tool_executor": "gone-tool"}), *events[1:]]
    counting = CountingToolExecutor()
    store = MemoryStore()
    result = await replay(recorded, registry=_registry(counting), hooks=[StoreHook(store)])
    assert result.ok and result.output == {"b": 3} and counting.ran == []
    assert [e.tool_executor for e in _started(list(await store.events(result.run_id)))] \
        == [None]
    result = await replay(recorded, registry=_registry(counting), hooks=[StoreHook(store)],
                          tool_executor="counting")
    assert result.ok and counting.ran == []
    assert [e.tool_executor for e in _started(list(await store.events(result.run_id)))] \
        == ["counting"]
