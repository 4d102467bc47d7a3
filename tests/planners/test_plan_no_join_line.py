"""A text plan without join() is reported at the line where it ends (where join() was
due): the message had no line, the only plan problem without one but the empty text."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.plan_cmd import plan_app
from planners.llmcompiler import parse_plan
from planners.tools import ToolCatalog


@pytest.mark.parametrize(("plan", "line"), [
    ('1. search("a")\n2. search("b")\n\n\n', 2),
    ('1. search("a")\n2. search("b")\n<END_OF_PLAN>\n', 3),
    ('Thought: look\n1. search("a")\nThat should do.\n', 3),
    ('1. search("a")\n2. search("b",\n  "c"\n', 3),
])
def test_no_join_is_at_the_plan_s_last_line(catalog: ToolCatalog, plan: str,
                                            line: int) -> None:
    last = parse_plan(plan, catalog).problems[-1]
    assert (last.code, last.line) == ("no_join", line)


def test_an_empty_text_has_no_line(catalog: ToolCatalog) -> None:
    assert [(p.code, p.line) for p in parse_plan("\n\n", catalog).problems] == [
        ("empty_plan", None)]


def test_ponder_plan_parse_prints_the_line() -> None:
    app = typer.Typer()
    app.add_typer(plan_app, name="plan")
    result = CliRunner().invoke(app, ["plan", "parse", "-"],
                                input='1. search("a")\n2. search("b")\n')
    assert result.exit_code == 1
    assert "<stdin>:2: error: the plan does not end with join() [no_join]" in result.stderr, \
        result.stderr
