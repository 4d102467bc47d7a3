"""Cyclic-GC tuning while runs are active.

A large run keeps hundreds of thousands of small objects alive (plans, states, events);
with CPython's default thresholds the cyclic collector rescans them so often that it
cost 35-70 µs per step at 10k-100k steps (measured with bench/scheduler_bench.py),
more than the scheduler itself. While at least one run is active in the process the
young-generation threshold is raised; the previous thresholds come back when the
last run ends. Reference counting still frees everything acyclic at once.
Set ``PONDER_GC_TUNING=0`` to leave the collector alone.
"""

from __future__ import annotations

import gc
import os
import threading

_RUN_THRESHOLDS = (100_000, 50, 1_000)
_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] | None = None


class _Tuned:
    """Context manager: raise GC thresholds for the duration (nesting- and thread-safe)."""

    __slots__ = ("_on",)

    def __enter__(self) -> None:
        global _active, _saved
        self._on = os.environ.get("PONDER_GC_TUNING", "1") != "0"
        if not self._on:
            return
        with _lock:
            if _active == 0:
                _saved = gc.get_threshold()
                gc.set_threshold(*_RUN_THRESHOLDS)
            _active += 1

    def __exit__(self, *exc: object) -> None:
        global _active, _saved
        if not self._on:
            return
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


def gc_tuned() -> _Tuned:
    """Raise GC thresholds for the duration (nesting- and thread-safe)."""
    return _Tuned()
