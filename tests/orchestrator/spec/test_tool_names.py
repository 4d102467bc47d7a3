"""A workflow file's `tools:` names follow the SDK's rule: one word, no space or control
character. A planner's plan calls a tool as `name(...)`, so "my add" could be called only
by a `tool:` step quoting it; the SDK refused such names while a file took them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_file
from orchestrator.sdk import Workflow
from orchestrator.spec.loader import load_yaml


def _yaml(name: str) -> str:
    return (f"name: t\ntools:\n  {name}: mytools:add\nsteps:\n  - id: a\n    kind: tool\n"
            f"    tool: {name}\n    args: {{a: 1, b: 2}}\n")


@pytest.mark.parametrize(("name", "shown"), [
    ('"my add"', "'my add'"),
    ('""', "''"),
    ('"a\\tb"', "'a\\tb'"),
    ('"a\\nb"', "'a\\nb'"),
])
def test_a_name_no_plan_could_call_is_refused_at_its_key(name: str, shown: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_yaml("t.yaml", text=_yaml(name))
    assert [p.format() for p in info.value.problems] == [
        "t.yaml:3:3: error: tools: a tool's name must be one word, without spaces or "
        f"control characters (such as 'word_count'), not {shown}"]


def test_validate_reports_it_once_and_the_step_naming_it_is_not_unknown(
        tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    path = tmp_path / "t.yaml"
    path.write_text(_yaml('"my add"'))
    problems = validate_file(path)
    assert [(p.line, p.column) for p in problems] == [(3, 3)]
    assert "not 'my add'" in problems[0].message


def test_the_sdk_gives_the_same_words(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="a tool's name must be one word"):
        Workflow.from_yaml_text(_yaml('"my add"'))
    (tmp_path / "mytools.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    path = tmp_path / "t.yaml"
    path.write_text(_yaml("my_add"))
    assert Workflow.from_yaml(path).run_sync(backend="simulated").output == 3
