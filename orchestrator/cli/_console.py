"""The consoles every command prints through: rich's, except that off a terminal (a
pipe, a file, a CI log) no line is wrapped, so that one message stays one line that
``grep`` finds and a table's cells are never squeezed.

On a terminal rich wraps text at the terminal's width as usual.

Where standard output or error cannot encode every character (a ``C`` or Latin-1
locale), nothing fails for it: :func:`tolerate_encodings` makes those streams print a
character they cannot hold as an escape (``\\xe9``), and :func:`json_text` escapes the
JSON it prints (``\\u00e9``, the same document), so a run's result is never lost to
the terminal's encoding.
"""

from __future__ import annotations

import errno
import json
import os
import select
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console, ConsoleDimensions
from rich.table import Table

#: the width a console reports off a terminal: no line is that long (rich pads nothing
#: that these commands print to the console's width, so it costs nothing)
UNWRAPPED_WIDTH = 1 << 24


class OutputError(Exception):
    """Standard output refused what a command printed for another reason than a reader
    that has gone: a full disk (``> /dev/full``: ENOSPC), an I/O error. (It was an
    "internal error", exit status 2, or a traceback when the error document of ``--json``
    could not be printed either.)

    :param error: the error of the write.
    """

    def __init__(self, error: OSError) -> None:
        super().__init__(f"cannot write to standard output: {error.strerror or error}")
        self.error = error


@contextmanager
def _writing_stdout() -> Iterator[None]:
    """Raise :class:`OutputError` for an error of writing to standard output, except a
    closed pipe's (``BrokenPipeError``), which a command ends on quietly."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(exc) from exc


class StreamConsole(Console):
    """A rich console that wraps no line when its file is not a terminal.

    rich gives a console off a terminal the width ``COLUMNS`` or 80 (or that of the
    terminal on stdin), and wraps every longer line there.

    A write to standard output that fails raises :class:`OutputError`; one to standard
    error is dropped: a message there is no part of a command's result (its output and
    exit status), which a full log disk (``2> /dev/full``) should not cost.
    """

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if not self.stderr:
            with _writing_stdout():
                yield
            return
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError:
            pass

    def print(self, *objects: Any, **options: Any) -> None:
        """rich's ``print``; see the class for a write that fails."""
        with self._writing():
            super().print(*objects, **options)

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
        with self._writing():  # (the capture's end writes, too)
            with self.capture() as captured:
                self.print(table)
            self.file.write("".join(line.rstrip() + "\n"
                                    for line in captured.get().splitlines()))
            self.file.flush()


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what is printed to standard output meanwhile to standard error: a command's
    standard output holds its result alone (one JSON document with ``--json``), and a
    tool that prints, as it is imported or as it runs, would have put its lines in it.

    Python's ``sys.stdout`` is redirected, and the file descriptor behind it too where
    it has one, so that a tool's subprocess or C code printing there is moved as well.
    """
    stdout, stderr = sys.stdout, sys.stderr
    try:
        stdout.flush()
        fd, err_fd = stdout.fileno(), stderr.fileno()
        saved: int | None = os.dup(fd) if fd != err_fd else None
    except (AttributeError, OSError, ValueError):  # no descriptor (captured), or closed
        fd, saved = -1, None
    if saved is not None:
        os.dup2(err_fd, fd)
    sys.stdout = stderr
    try:
        yield
    finally:
        sys.stdout = stdout
        if saved is not None:
            try:
                stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, fd)
            os.close(saved)


#: standard output (results, tables)
out = StreamConsole()
#: standard error (errors, run summaries, the live view)
err = StreamConsole(stderr=True)


def encodes_all(stream: TextIO) -> bool:
    """Whether a text stream's encoding holds every character (UTF-8 and its kin); a
    stream that names no encoding is taken to."""
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return True
    try:
        "\u00e9\u2014\U0001f600".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def tolerate_encodings() -> None:
    """Let standard output and error print, as a backslash escape, a character their
    encoding cannot hold, instead of failing the command after its work is done: one
    outside ASCII under ``LANG=C``, and under UTF-8 too a lone surrogate (``\ud800``, which
    a Python tool can return and no UTF-8 holds), whose escape in a JSON string is the
    same character to a JSON reader."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def closed_pipe(exc: BaseException) -> bool:
    """Whether an error is that of writing to standard output, a pipe whose reader has
    gone (``ponder runs | head -1``); not one of another pipe or socket (a model
    server's), which is a failure to report."""
    return isinstance(exc, OSError) and exc.errno == errno.EPIPE and _stdout_gone()


def _stdout_gone() -> bool:
    """Whether standard output is a pipe with no reader left (the poll of its write end
    says so: ``POLLERR``); taken to be where the platform cannot poll a pipe."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        return False
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def quiet_stdout() -> None:
    """Send what standard output still holds, and all it is given from now on, to
    ``/dev/null``: after its reader has gone, so that Python's last flush of it at exit
    fails with no message (the recipe of Python's documentation on ``SIGPIPE``)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture), closed
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def json_text(doc: Any, **options: Any) -> str:
    """A JSON document as standard output can print it: its characters as they are where
    stdout encodes them all, else every non-ASCII one as a ``\\uXXXX`` escape (the same
    document to any JSON reader)."""
    return json.dumps(doc, ensure_ascii=not encodes_all(sys.stdout), **options)


def write_json(doc: Any, **options: Any) -> None:
    """Print one JSON document (and a newline) on standard output; see :func:`json_text`.

    :raises OutputError: when standard output refuses it.
    """
    write_text(json_text(doc, **options) + "\n")


def write_text(text: str) -> None:
    """Print text as it is on standard output.

    :raises OutputError: when standard output refuses it.
    """
    with _writing_stdout():
        sys.stdout.write(text)
        sys.stdout.flush()
