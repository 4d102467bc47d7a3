"""A tool step whose argument, referenced from another step, has the wrong type fails
with a message naming the tool, the argument and the value it got: it was pydantic's
"expression: Input should be a valid string", and the step's text (``${steps.a.output}``)
does not show that the value was a number."""

from __future__ import annotations

from typing import Any

import pytest

from executors.builtin_tools import calc
from orchestrator import Workflow

pytestmark = pytest.mark.anyio


async def _error(value: Any) -> str | None:
    wf = Workflow("bad_arg")
    wf.register_tool(lambda: value, "make")
    wf.register_tool(calc, "calc")
    wf.tool("a", "make")
    wf.tool("b", "calc", expression="${steps.a.output}")
    result = await wf.run()
    assert not result.ok
    return result.error


async def test_a_referenced_value_of_the_wrong_type_is_shown_with_its_argument() -> None:
    assert await _error(5) == ("step 'b' failed: tool 'calc': bad arguments: argument "
                               "expression: Input should be a valid string (got 5, from "
                               "${steps.a.output})")


async def test_a_long_value_is_shown_clipped() -> None:
    error = await _error(list(range(10_000)))
    assert error is not None
    assert "argument expression: Input should be a valid string (got [0, 1, 2" in error
    assert "characters)" in error and len(error) < 300, error


async def test_a_none_a_reference_gave_names_the_reference() -> None:
    """extract found nothing (None) and calc got it: the message says where the None came
    from (it said only what calc wanted, two steps from the cause)."""
    assert await _error(None) == ("step 'b' failed: tool 'calc': bad arguments: argument "
                                  "expression: Input should be a valid string (got None, "
                                  "from ${steps.a.output})")

