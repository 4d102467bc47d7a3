"""Regular expressions a workflow gives (a join's ``extract``, a scorer's ``pattern``, the
``extract`` tool's), matched against model output with a time limit.

Python's :mod:`re` cannot be stopped: a pattern that backtracks catastrophically on some
text (``(x+x+)+y`` on a long run of ``x``) holds the event loop, and so the whole run,
for good. The `regex` package (a superset of :mod:`re`'s syntax, the same semantics for
what both accept) takes a timeout; a match that runs past :data:`MATCH_TIMEOUT_S` raises
:class:`PatternTimeout`, which each caller turns into its step's error naming the pattern.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import regex

from orchestrator.errors import PonderError, StepError

#: longest a single search (or a whole ``finditer``) may run, in seconds
MATCH_TIMEOUT_S = 1.0

IGNORECASE = regex.IGNORECASE
Match = regex.Match


class PatternTimeout(StepError):
    """Matching a workflow's regular expression ran past :data:`MATCH_TIMEOUT_S`: the
    step matching it fails (its pattern has to change; a retry would do the same)."""


class PatternError(PonderError, ValueError):
    """A workflow's regular expression does not compile."""


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str, flags: int = 0) -> regex.Pattern[str]:
    """:raises PatternError: naming the pattern and what is wrong with it."""
    try:
        return regex.compile(pattern, flags)
    except regex.error as exc:
        raise PatternError(f"{pattern!r} is not a regular expression: {exc}") from None


def _timed_out(pattern: str, text: str) -> PatternTimeout:
    return PatternTimeout(f"the pattern {pattern!r} took over {MATCH_TIMEOUT_S:g} s on a "
                          f"text of {len(text):,} characters (it backtracks too much: "
                          "make its repeated parts unambiguous)")


def search(pattern: str, text: str, flags: int = 0) -> regex.Match[str] | None:
    """The first match of ``pattern`` in ``text``.

    :raises PatternError: for a pattern that does not compile.
    :raises PatternTimeout: when matching runs past the limit.
    """
    try:
        return compile_pattern(pattern, flags).search(text, timeout=MATCH_TIMEOUT_S)
    except TimeoutError:
        raise _timed_out(pattern, text) from None


def find_all(pattern: str, text: str, flags: int = 0) -> list[regex.Match[str]]:
    """Every match of ``pattern`` in ``text``, in order (the limit is for all of them).

    :raises PatternError: for a pattern that does not compile.
    :raises PatternTimeout: when matching runs past the limit.
    """
    matches: Iterator[regex.Match[str]] = compile_pattern(pattern, flags).finditer(
        text, timeout=MATCH_TIMEOUT_S)
    try:
        return list(matches)
    except TimeoutError:
        raise _timed_out(pattern, text) from None
