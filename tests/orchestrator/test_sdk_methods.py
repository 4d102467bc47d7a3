"""A method of an object as a tool: registering ``obj.method`` again (each access makes a
new bound method) is registering the same function again, which is fine."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import ConfigError


class Counter:
    def __init__(self, start: int) -> None:
        self.start = start

    def add(self, x: int) -> int:
        return self.start + x


def test_one_objects_method_may_serve_several_steps() -> None:
    counter = Counter(10)
    wf = Workflow("m")
    wf.tool("a", counter.add, x=1)
    wf.tool("b", counter.add, x=2)  # was: tool 'add' is already registered, as ...Counter.add
    wf.register_tool(counter.add)
    wf.output(a="${steps.a.output}", b="${steps.b.output}")
    assert wf.run_sync().output == {"a": 11, "b": 12}


def test_another_objects_method_of_that_name_is_still_refused() -> None:
    wf = Workflow("m")
    wf.tool("a", Counter(10).add, x=1)
    with pytest.raises(ConfigError, match=r"tool 'add' is already registered"):
        wf.tool("b", Counter(20).add, x=1)  # steps would silently call one of the two
    wf.register_tool(Counter(20).add, "add20")
    wf.tool("b", "add20", x=1)
    assert {s.id: s.output for s in wf.run_sync().steps} == {"a": 11, "b": 21}
