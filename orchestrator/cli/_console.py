"""The consoles every command prints through: rich's, except that off a terminal (a
pipe, a file, a CI log) no line is wrapped, so that one message stays one line that
``grep`` finds and a table's cells are never squeezed.

On a terminal rich wraps text at the terminal's width as usual.
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions
from rich.table import Table

#: the width a console reports off a terminal: no line is that long (rich pads nothing
#: that these commands print to the console's width, so it costs nothing)
UNWRAPPED_WIDTH = 1 << 24


class StreamConsole(Console):
    """A rich console that wraps no line when its file is not a terminal.

    rich gives a console off a terminal the width ``COLUMNS`` or 80 (or that of the
    terminal on stdin), and wraps every longer line there.
    """

    @property
    def wraps(self) -> bool:
        """Whether long lines are wrapped: only on a terminal (``FORCE_COLOR`` makes a CI
        log a terminal for colours, not for its width)."""
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty()) if isatty is not None else False
        except ValueError:  # a closed file
            return False

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.wraps else ConsoleDimensions(UNWRAPPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def print_table(self, table: Table) -> None:
        """Print a table; off a terminal, without the spaces that pad each row to the
        table's width (a row with a long cell would pad every other row as long)."""
        if self.wraps:
            self.print(table)
            return
        with self.capture() as captured:
            self.print(table)
        self.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


#: standard output (results, tables)
out = StreamConsole()
#: standard error (errors, run summaries, the live view)
err = StreamConsole(stderr=True)
