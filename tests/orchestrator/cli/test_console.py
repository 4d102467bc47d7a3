"""The commands' consoles: rich's wrapping on a terminal, none off one."""

from __future__ import annotations

import io

from rich.table import Table
from rich.text import Text

from orchestrator.cli._console import StreamConsole

LONG = " ".join(f"word{i}" for i in range(40))  # 279 characters


class _Terminal(io.StringIO):
    """A file that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _table() -> Table:
    table = Table("id", "error", box=None)
    table.add_row(Text("a"), Text(LONG))
    table.add_row(Text("b"), Text("short"))
    return table


def test_off_a_terminal_nothing_is_wrapped_or_padded() -> None:
    file = io.StringIO()
    console = StreamConsole(file=file, width=80)
    assert not console.wraps
    console.print(f"error: {LONG}", markup=False, highlight=False)
    console.print_table(_table())
    assert file.getvalue().splitlines() == [f"error: {LONG}", " id  error", f" a   {LONG}",
                                            " b   short"]


def test_on_a_terminal_rich_wraps_at_its_width() -> None:
    file = _Terminal()
    console = StreamConsole(file=file, width=80, color_system=None)
    assert console.wraps and console.width == 80
    console.print(f"error: {LONG}", markup=False, highlight=False)
    console.print_table(_table())
    lines = file.getvalue().splitlines()
    assert len(lines) > 4 and all(len(line) <= 80 for line in lines), lines
    assert lines[0].startswith("error: word0 ")
