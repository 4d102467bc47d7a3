"""Cyclic-GC tuning while large runs are active.

A large run keeps hundreds of thousands of small objects alive (plans, states, events);
with CPython's default thresholds the cyclic collector rescans them so often that it
cost 35-70 µs per step at 10k-100k steps (measured with bench/scheduler_bench.py),
more than the scheduler itself. So while the runs active in the process hold at least
``TUNE_FROM_STEPS`` steps between them (one large run, or many small ones at once), the
young-generation threshold is raised; the previous thresholds come back when the last of
those runs ends. Smaller workloads leave the collector alone (they keep too few objects
alive for its rescans to matter). Reference counting still frees everything acyclic at
once. Set ``PONDER_GC_TUNING=0`` to leave the collector alone.
"""

from __future__ import annotations

import gc
import os
import threading

TUNE_FROM_STEPS = 1_000
_RUN_THRESHOLDS = (100_000, 50, 1_000)
_lock = threading.Lock()
_steps = 0
_saved: tuple[int, int, int] | None = None


def note_steps(delta: int) -> None:
    """A run added ``delta`` steps (or, negative, ended with them): tune or restore."""
    global _steps, _saved
    with _lock:
        _steps += delta
        if _saved is None and _steps >= TUNE_FROM_STEPS:
            if os.environ.get("PONDER_GC_TUNING", "1") != "0":
                _saved = gc.get_threshold()
                gc.set_threshold(*_RUN_THRESHOLDS)
        elif _saved is not None and _steps <= 0:
            gc.set_threshold(*_saved)
            _saved = None
