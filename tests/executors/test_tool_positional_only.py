"""A tool with positional-only parameters (``def f(x, /)``) is called with them by
position. They were passed by name, and every call failed: "tool 'clamp' raised
TypeError: clamp() got some positional-only arguments passed as keyword arguments"."""

from __future__ import annotations

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def clamp(x: int, lo: int = 0, /, hi: int = 10) -> int:
    return max(lo, min(x, hi))


async def aclamp(x: int, lo: int = 0, /, *, hi: int = 10) -> int:
    return max(lo, min(x, hi))


async def test_positional_only_parameters_are_given_by_position() -> None:
    wf = Workflow("positional")
    wf.register_tool(clamp)
    wf.register_tool(aclamp)
    wf.tool("defaults", "clamp", x=42)
    wf.tool("all", "clamp", x=-5, lo=-2, hi=3)
    wf.tool("async", "aclamp", x=-5, lo=-2)
    result = await wf.run()
    assert {s.id: (s.output, s.error) for s in result.steps} == {
        "defaults": (10, None), "all": (-2, None), "async": (-2, None)}
