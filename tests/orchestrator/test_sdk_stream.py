"""The SDK's event stream and hooks under asyncio and trio: leaving the loop early,
errors in and around it, plain-function hooks, run_sync inside a running loop."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from orchestrator import Workflow
from orchestrator.errors import ConfigError, SpecError, ValidationFailed

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def slow_workflow(log: list[str]) -> Workflow:
    """Two tool steps that take a second each and log how they ended."""

    async def slow(x: int) -> int:
        try:
            await anyio.sleep(1)
        except BaseException:
            log.append(f"cancelled {x}")
            raise
        log.append(f"finished {x}")
        return x

    wf = Workflow("slow")
    wf.tool("a", slow, x=1)
    wf.tool("b", slow, x=2)
    return wf


async def settle() -> None:
    """Let the event loop close an abandoned generator and the run it cancels."""
    gc.collect()
    await anyio.sleep(0.3)


async def test_breaking_out_of_the_stream_cancels_the_run() -> None:
    log: list[str] = []
    kinds = []
    async for event in slow_workflow(log).stream():
        kinds.append(event.kind)
        if event.kind == "step_started":
            break
    await settle()
    assert kinds == ["run_started", "step_started"]
    assert sorted(log) == ["cancelled 1", "cancelled 2"]


async def test_an_error_in_the_stream_loop_reaches_the_caller_and_cancels_the_run() -> None:
    log: list[str] = []
    with pytest.raises(KeyError, match="mine"):
        async for event in slow_workflow(log).stream():
            if event.kind == "step_started":
                raise KeyError("mine")
    await settle()
    assert sorted(log) == ["cancelled 1", "cancelled 2"]


async def test_the_context_form_raises_the_blocks_own_error_as_it_is() -> None:
    log: list[str] = []
    with pytest.raises(KeyError, match="mine"):
        async with slow_workflow(log).stream() as events:
            async for event in events:
                if event.kind == "step_started":
                    raise KeyError("mine")
    assert sorted(log) == ["cancelled 1", "cancelled 2"]


async def test_the_context_form_raises_what_stops_the_run_as_it_is() -> None:
    wf = Workflow("needs", inputs={"q": "string"})
    wf.tool("a", "calc", expression="1 + 1")
    with pytest.raises(SpecError, match="missing input 'q'"):
        async with wf.stream() as events:
            async for _ in events:
                pass


async def test_the_stream_reads_a_whole_run_and_ends_with_its_result() -> None:
    wf = Workflow("calc")
    wf.tool("a", "calc", expression="6 * 7")
    wf.output(x="${steps.a.output}")
    events = [e async for e in wf.stream()]
    last = events[-1]
    assert last.kind == "run_finished"
    assert last.status == "succeeded"
    assert last.output == {"x": 42}


async def test_a_plain_function_is_a_hook_too() -> None:
    """A hook written without async got every batch (it failed with "object NoneType
    can't be used in 'await' expression")."""
    seen: list[str] = []

    def plain(events: Sequence[Any]) -> None:
        seen.extend(e.kind for e in events)

    wf = Workflow("calc")
    wf.tool("a", "calc", expression="1 + 1")
    result = await wf.run(hooks=[plain])
    assert result.ok
    assert seen[0] == "run_started"
    assert seen[-1] == "run_finished"
    assert "step_succeeded" in seen


async def test_a_hook_that_is_not_callable_is_named() -> None:
    wf = Workflow("calc")
    wf.tool("a", "calc", expression="1 + 1")
    with pytest.raises(ConfigError, match=r"hooks: a hook must be a function .* not str 'log'"):
        await wf.run(hooks=["log"])  # type: ignore[list-item]


async def test_run_sync_inside_a_running_loop() -> None:
    wf = Workflow("calc")
    wf.tool("a", "calc", expression="2 * 3")
    assert wf.run_sync().output == 6


def test_run_sync_raises_the_runs_error_without_our_context() -> None:
    """run_sync raised inside its `except RuntimeError` of the loop check: every error
    showed "RuntimeError: no running event loop ... During handling of the above
    exception, another exception occurred" above the user's own."""
    wf = Workflow("bad")
    wf.llm("a", prompt="{{ steps.zz.output }}")
    with pytest.raises(ValidationFailed) as info:
        wf.run_sync()
    assert info.value.__context__ is None
