"""A tool's exception whose ``str()`` itself raises still fails its step as the tool's:
the message names the tool and the exception's class. Writing the message raised again,
and the step failed as "unexpected RuntimeError: ..." with neither named."""

from __future__ import annotations

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def sync_unprintable() -> None:
    raise Unprintable


async def async_unprintable() -> None:
    raise Unprintable


async def test_an_exception_that_cannot_be_written_is_still_the_tools() -> None:
    wf = Workflow("unprintable")
    for fn in (sync_unprintable, async_unprintable):
        wf.register_tool(fn)
        wf.tool(fn.__name__, fn.__name__)
    result = await wf.run()
    assert {s.id: s.error for s in result.steps} == {
        name: f"tool {name!r} raised Unprintable: (its message cannot be shown: str() "
              "raised RuntimeError)"
        for name in ("sync_unprintable", "async_unprintable")}
