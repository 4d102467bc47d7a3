"""A run records the executor its tool steps ran on (``--tool-executor``), and its resume
runs them there again unless told another: a run started on ``ray-tool`` resumed on the
default tool executor. A trace written before Ponder recorded it resumes on the default."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from executors.tool import ToolExecutor
from orchestrator import ConfigError, Registry, Workflow
from orchestrator.runtime.contracts import ExecContext, Result, Task
from orchestrator.runtime.durable import recording_from_events, resume
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.cut_runs import TWO

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class CountingToolExecutor:
    """Runs tool steps as the default executor does, noting each step it ran."""

    ran: list[str] = field(default_factory=list)
    inner: ToolExecutor = field(default_factory=ToolExecutor)

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        self.ran.append(task.step_id)
        return await self.inner.execute(task, ctx)


def _registry(counting: CountingToolExecutor) -> Registry:
    reg = Registry.default()
    reg.executors["counting"] = counting
    return reg


async def whole_run(tmp_path: Path, tool_executor: str | None) -> list[Any]:
    """The events of a whole run of TWO on ``tool_executor``."""
    wf_file = tmp_path / "two.yaml"
    wf_file.write_text(TWO)
    wf = Workflow.from_yaml(wf_file)
    wf.registry.executors["counting"] = CountingToolExecutor()
    store = MemoryStore()
    done = await wf.run(hooks=[StoreHook(store)], tool_executor=tool_executor)
    assert done.ok
    return list(await store.events(done.run_id))


async def _cut_run(tmp_path: Path, tool_executor: str | None) -> list[Any]:
    """A run of TWO on ``tool_executor``, its trace kept up to `b`'s step_started (as a
    crash leaves it)."""
    events = await whole_run(tmp_path, tool_executor)
    cut = next(e.seq for e in events if e.kind == "step_started" and e.step_id == "b")
    return [e for e in events if e.seq <= cut]


def _started(result_events: list[Any]) -> list[Any]:
    return [e for e in result_events if e.kind == "run_started"]


async def test_a_run_records_its_tool_executor_and_resume_runs_there_again(
        tmp_path: Path) -> None:
    events = await _cut_run(tmp_path, "counting")
    assert _started(events)[0].tool_executor == "counting"
    assert recording_from_events(events).tool_executor == "counting"
    counting = CountingToolExecutor()
    store = MemoryStore()
    await store.append(events)
    result = await resume(events, registry=_registry(counting), hooks=[StoreHook(store)])
    assert result.ok and result.output == {"b": 3}
    assert counting.ran == ["b"]  # on the recorded executor, not the default one
    resumed = _started(list(await store.events(result.run_id)))
    assert [e.tool_executor for e in resumed] == ["counting", "counting"]


async def test_a_tool_executor_given_to_resume_wins_over_the_recorded_one(
        tmp_path: Path) -> None:
    events = await _cut_run(tmp_path, "counting")
    counting = CountingToolExecutor()
    store = MemoryStore()
    await store.append(events)
    result = await resume(events, registry=_registry(counting), hooks=[StoreHook(store)],
                          tool_executor="tool")
    assert result.ok and result.output == {"b": 3}
    assert counting.ran == []
    resumed = _started(list(await store.events(result.run_id)))
    assert [e.tool_executor for e in resumed] == ["counting", "tool"]


async def test_a_run_without_a_recorded_tool_executor_resumes_on_the_default(
        tmp_path: Path) -> None:
    """Also a trace written before Ponder recorded it: its run_started has no such field."""
    events = await _cut_run(tmp_path, None)
    data = events[0].model_dump()
    assert data.pop("tool_executor") is None
    events[0] = type(events[0]).model_validate(data)
    counting = CountingToolExecutor()
    result = await resume(events, registry=_registry(counting))
    assert result.ok and result.output == {"b": 3}
    assert counting.ran == []


#: tool executors a run cannot use, and what the refusal says after ``tool_executor='X': ``
BAD_TOOL_EXECUTORS = [
    ("nope", "no such executor; installed for tool steps: counting, ray-tool, tool"),
    ("llm", "that executor runs llm steps, not tool steps; installed for tool steps: "
            "counting, ray-tool, tool"),
]


@pytest.mark.parametrize(("given", "problem"), BAD_TOOL_EXECUTORS)
async def test_a_tool_executor_resume_cannot_use_is_refused_before_anything_is_recorded(
        tmp_path: Path, given: str, problem: str) -> None:
    events = await _cut_run(tmp_path, "counting")
    store = MemoryStore()
    with pytest.raises(ConfigError) as caught:
        await resume(events, registry=_registry(CountingToolExecutor()),
                     hooks=[StoreHook(store)], tool_executor=given)
    assert str(caught.value) == f"tool_executor={given!r}: {problem}"
    recorded = events[0].model_copy(update={"tool_executor": given})
    with pytest.raises(ConfigError) as caught:
        await resume([recorded, *events[1:]], registry=_registry(CountingToolExecutor()),
                     hooks=[StoreHook(store)])
    assert str(caught.value) == f"the run's recorded tool_executor={given!r}: {problem}"
    assert await store.list_runs() == []


async def test_workflow_run_refuses_a_tool_executor_that_is_not_installed() -> None:
    wf = Workflow("w")
    wf.tool("a", "calc", expression="1 + 1")
    with pytest.raises(ConfigError, match=r"^tool_executor='nope': no such executor; "):
        await wf.run(tool_executor="nope")
