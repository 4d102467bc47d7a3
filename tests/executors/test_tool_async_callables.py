"""An async tool that does not look async to ``inspect.iscoroutinefunction`` (a
decorator's sync wrapper around it, an object whose ``__call__`` is async) is awaited.
It ran as a sync tool: its step failed on the coroutine it returned ("not JSON
(coroutine ...)") and Python warned that the coroutine was never awaited."""

from __future__ import annotations

import functools
import gc
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.lowlevel
import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def _logged(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A decorator as users write one: a plain function that returns what ``fn`` returns."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Awaitable[Any]:
        return fn(*args, **kwargs)

    return wrapper


@_logged
async def doubled(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    return 2 * x


@_logged
async def refuses(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    raise ValueError(f"no {x}")


class Adder:
    def __init__(self, n: int) -> None:
        self.n = n

    async def __call__(self, x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x + self.n


async def test_async_tools_behind_a_sync_face_are_awaited() -> None:
    wf = Workflow("faces")
    wf.register_tool(doubled)
    wf.register_tool(refuses)
    wf.register_tool(Adder(10), "add_ten")
    wf.tool("d", "doubled", x=4)
    wf.tool("a", "add_ten", x=1)
    wf.tool("r", "refuses", x=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "coroutine ... was never awaited"
        result = await wf.run()
        gc.collect()
    by_id = {s.id: s for s in result.steps}
    assert (by_id["d"].status, by_id["d"].output) == ("succeeded", 8), by_id["d"].error
    assert (by_id["a"].status, by_id["a"].output) == ("succeeded", 11), by_id["a"].error
    assert by_id["r"].error == "tool 'refuses' raised ValueError: no 3"
