"""A virtual clock for asyncio: sleeps take no wall time, so an hour of engine time runs in seconds.

:class:`VirtualClockLoop` is an asyncio event loop whose :meth:`~VirtualClockLoop.time`
is a counter. When every task is blocked and the next thing to happen is a timer, the
loop jumps the counter to that timer instead of waiting for it (the "autojump" of
trio's ``MockClock``). Code under it is unchanged: ``anyio.sleep``, timeouts and
``anyio.current_time()`` all read the virtual clock.

Use it through :func:`run_virtual`, or give ``loop_factory=VirtualClockLoop`` to
``anyio.run(..., backend_options=...)``. Real I/O still works (the loop polls its
selector before jumping), but wall-clock work such as threads races the virtual clock;
the simulated engines and the benchmark do no such work.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, instead of blocking for ``timeout`` seconds, advances the clock."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:  # nothing scheduled: only I/O or another thread can wake us
            return super().select(None)
        ready = super().select(0)
        if not ready and timeout > 0:
            self._clock[0] += timeout
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock that starts at 0 and jumps to the next timer."""

    def __init__(self) -> None:
        self._virtual_now = [0.0]
        super().__init__(_JumpingSelector(self._virtual_now))

    def time(self) -> float:
        """The virtual time, in seconds since the loop was made."""
        return self._virtual_now[0]


def run_virtual(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func(*args)`` with anyio on a :class:`VirtualClockLoop`.

    :returns: what ``func`` returns.
    """
    return anyio.run(func, *args, backend="asyncio",
                     backend_options={"loop_factory": VirtualClockLoop})
