"""The live table of `ponder run`: user strings are shown as written, never as markup."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orchestrator import Workflow
from orchestrator.cli.live import LiveView

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_step_ids_and_errors_with_brackets_are_shown_as_written() -> None:
    wf = Workflow.from_yaml_text(
        "name: brackets\nmodels: {default: {backend: simulated, options: {time_scale: 0}}}\n"
        "steps:\n  - {id: s, kind: sample, prompt: Propose., n: 2}\n"
        "  - {id: j, kind: join, of: s, reducer: first_finish,\n"
        "     check: {tool: extract, args: {text: '${candidate}', pattern: '.'}}}\n"
        "  - {id: t, kind: tool, tool: calc, args: {expression: '[bold]1 +'}}\n")
    console = Console(file=io.StringIO(), width=200)
    view = LiveView(console)
    result = await wf.run(hooks=[view])
    assert not result.ok  # the calc step fails, with the expression in its error
    console.print(view.render())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    rows = {line.split()[0] for line in shown.splitlines()[1:] if line.strip()}
    assert {"s[0]", "s[1]", "s[check0]", "j", "t"} <= rows, shown
    assert "[bold]1 +" in shown, shown


async def test_a_narrow_terminal_shows_each_step_id_and_status_whole() -> None:
    """At 40 columns the table cut ids and statuses to 'spid…' and 'suc…'; it leaves
    out the columns that do not fit instead."""
    wf = Workflow.from_yaml_text(
        "name: narrow\nsteps:\n"
        "  - {id: spider_fact, kind: tool, tool: calc, args: {expression: '8'}}\n"
        "  - {id: why_count_them, kind: tool, tool: calc, args: {expression: '6'}}\n")
    console = Console(file=io.StringIO(), width=40)
    view = LiveView(console)
    assert (await wf.run(hooks=[view])).ok
    console.print(view.render())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in shown, shown
    lines = shown.splitlines()
    assert all(len(line) <= 40 for line in lines), shown
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["step", "status"])
    rows = {line.split()[0]: line.split()[1] for line in lines[header + 1:] if line.strip()}
    assert rows == {"spider_fact": "succeeded", "why_count_them": "succeeded"}, shown
