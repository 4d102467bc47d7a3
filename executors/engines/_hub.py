"""Engines shared by the runs of one process.

A run builds its LLM backends from its workflow's ``models:`` and closes them when it
ends. A GPU engine cannot be built per run: two runs in one process must share one
vLLM engine per GPU, and many concurrent runs must share one pool so that its
priorities and affinities see all of them. Backends therefore hold a *reference* to a
shared object, keyed by its configuration: the first reference builds it, the last
release closes it (or, for ``keep`` objects such as a loaded model, leaves it for the
next run until :meth:`SharedObjects.aclose`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

T = TypeVar("T")
_log = logging.getLogger(__name__)


async def close_all(closers: Iterable[Callable[[], Awaitable[None]]]) -> None:
    """Await every close, also after one fails (an engine left open holds its GPU).

    :raises Exception: the first close's error, once all have run (the others are logged).
    """
    first: Exception | None = None
    for close in closers:
        try:
            await close()
        except Exception as exc:
            if first is None:
                first = exc
            else:
                _log.warning("closing an engine failed too: %s: %s", type(exc).__name__, exc)
    if first is not None:
        raise first


@dataclass
class _Entry:
    value: Any
    close: Callable[[], Awaitable[None]]
    refs: int
    keep: bool


class SharedObjects:
    """Reference-counted objects keyed by a string (a configuration's JSON)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._starting: dict[str, anyio.Event] = {}

    def acquire(self, key: str, make: Callable[[], T], close: Callable[[T], Awaitable[None]],
                *, keep: bool = False) -> T:
        """The object for ``key``, built by ``make()`` if there is none; one more reference.

        :param keep: leave the object alive when its last reference is released.
        """
        entry = self._entries.get(key)
        if entry is None:
            value = make()
            entry = self._entries[key] = _Entry(value, lambda: close(value), 0, keep)
        entry.refs += 1
        return entry.value  # type: ignore[no-any-return]

    async def acquire_async(self, key: str, make: Callable[[], Awaitable[T]],
                            close: Callable[[T], Awaitable[None]], *, keep: bool = False) -> T:
        """:meth:`acquire` with a ``make`` that awaits (an engine started in a worker
        thread); callers arriving while it runs wait for it instead of making another.

        :raises Exception: what ``make`` raised (the next caller tries again).
        """
        while key not in self._entries and key in self._starting:
            await self._starting[key].wait()
        entry = self._entries.get(key)
        if entry is None:
            done = self._starting[key] = anyio.Event()
            try:
                value = await make()
            finally:
                del self._starting[key]
                done.set()
            entry = self._entries[key] = _Entry(value, lambda: close(value), 0, keep)
        entry.refs += 1
        return entry.value  # type: ignore[no-any-return]

    async def release(self, key: str) -> None:
        """Drop one reference; the last one closes the object unless it is kept."""
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs <= 0 and not entry.keep:
            del self._entries[key]
            await entry.close()

    async def aclose(self) -> None:
        """Close every object, referenced or not.

        :raises Exception: the first error of a close, once every close has run.
        """
        entries, self._entries = list(self._entries.values()), {}
        await close_all(entry.close for entry in entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries


#: the process's shared engines (what backends built from entry points use)
SHARED = SharedObjects()
