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
from collections.abc import Iterator
from contextlib import contextmanager

_RUN_THRESHOLDS = (100_000, 50, 1_000)
_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def gc_tuned() -> Iterator[None]:
    """Raise GC thresholds for the duration (nesting- and thread-safe)."""
    global _active, _saved
    if os.environ.get("PONDER_GC_TUNING", "1") == "0":
        yield
        return
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*_RUN_THRESHOLDS)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
