"""The SDK refuses inputs a workflow does not declare, in the words of ``ponder run``."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import SpecError

pytestmark = pytest.mark.anyio


def _undeclaring() -> Workflow:
    wf = Workflow("w")
    wf.tool("a", "calc", expression="1+1")
    return wf


async def test_run_refuses_inputs_of_a_workflow_that_declares_none() -> None:
    """They were taken and ignored (no step can read an undeclared input)."""
    with pytest.raises(SpecError) as info:
        await _undeclaring().run({"topic": "x"})
    assert str(info.value) == "unknown input 'topic' (the workflow declares no inputs)"


def test_run_sync_refuses_them_too_naming_each() -> None:
    with pytest.raises(SpecError) as info:
        _undeclaring().run_sync({"topic": "x", "n": 1})
    assert str(info.value) == "unknown inputs 'topic', 'n' (the workflow declares no inputs)"


async def test_stream_refuses_them() -> None:
    with pytest.raises(SpecError, match="declares no inputs"):
        async for _ in _undeclaring().stream({"topic": "x"}):
            pass


async def test_no_inputs_still_run() -> None:
    result = await _undeclaring().run()
    assert result.ok and result.output == 2


@pytest.mark.parametrize("inputs", ["hello", ["q"], 5, ("q", 1)])
@pytest.mark.parametrize("declared", [{"q": "string"}, None])
def test_inputs_that_are_not_a_dict_are_refused_naming_them(inputs: object,
                                                            declared: dict[str, str] | None
                                                            ) -> None:
    """``run("hello")`` said "unknown input 'h' ...; unknown input 'e' ...", one per
    letter; ``run(["q"])`` and ``run(5)`` raised a bare TypeError from inside the run."""
    wf = Workflow("w", inputs=declared)  # type: ignore[arg-type]
    wf.tool("a", "calc", expression="1")
    with pytest.raises(SpecError) as info:
        wf.run_sync(inputs)  # type: ignore[arg-type]
    assert str(info.value) == ("inputs must be a dict of input names to values, not "
                               f"{type(inputs).__name__} {inputs!r}")
