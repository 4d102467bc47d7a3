"""A tool's type hints are read in its own module. A module with ``from __future__ import
annotations`` (this one) writes them as strings, which pydantic looked up in its own
namespace: the run then died with an internal error ("`when_args` is not fully
defined") at the tool's first call. A hint that does not resolve, or a type pydantic
cannot validate, is a problem at the tool's `tools:` line."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, ValidationFailed
from orchestrator.graph.validate import validate_file
from orchestrator.sdk import Workflow


@dataclasses.dataclass
class Span:
    start: int
    end: int


def weekday(day: datetime.date, span: Span | None = None) -> str:
    return f"{day:%A} {span.end - span.start if span else 0}"


class Opaque:
    """A class pydantic has no schema for."""


def takes_opaque(thing: Opaque) -> str:
    return "never called"


def test_string_hints_are_read_in_the_tools_module() -> None:
    wf = Workflow("hints")
    wf.register_tool(weekday)
    wf.tool("w", "weekday", day="2024-05-06", span={"start": 2, "end": 5})
    result = wf.run_sync()
    assert result.status == "succeeded", result.steps[0].error
    assert result.output == "Monday 3"


def test_a_type_pydantic_cannot_validate_is_refused_when_registered() -> None:
    with pytest.raises(ConfigError) as info:
        Workflow("opaque").register_tool(takes_opaque)
    assert str(info.value).startswith(
        "tool 'takes_opaque': argument 'thing' has the type Opaque, which pydantic cannot "
        "validate from the values a workflow gives")


_TOOLS = '''\
from __future__ import annotations
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from decimal import Decimal

def total(price: Decimal, n: int) -> str:
    return str(price * n)
'''


def test_a_hint_imported_for_type_checkers_only_is_a_problem_at_its_tools_line(
        tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(_TOOLS)
    path = tmp_path / "w.yaml"
    path.write_text("name: w\ntools:\n  total: shop:total\nsteps:\n  - id: t\n    kind: tool\n"
                    "    tool: total\n    args: {price: '1.5', n: 2}\n")
    with pytest.raises(ValidationFailed) as info:
        Workflow.from_yaml(path).run_sync()
    [problem] = info.value.problems
    assert (problem.line, problem.column) == (3, 3)
    assert problem.message == (
        "tool 'total': the type hint of argument 'price' (Decimal) does not resolve: "
        "NameError: name 'Decimal' is not defined (import the types a tool takes when its "
        "module runs, not only under TYPE_CHECKING)")
    assert validate_file(path) == []  # (validating imports no tool module)
