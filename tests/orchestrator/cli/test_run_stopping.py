"""`run_stopping`: the one path by which `ponder run`, `ponder resume` and `ponder replay`
stop on SIGINT / SIGTERM. A signal cancels the opening of the store; after it, it
cancels the run through the scheduler the run hands over (``on_scheduler``), also one
that came before the scheduler was handed over, and the run's own result is returned.
(Resume and replay were cancelled from outside, their outcome read back from the store.)
The process signals itself; a fake store and a fake scheduler stand in."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from orchestrator.cli._failure import Failure
from orchestrator.cli._signals import StopSignals, run_stopping

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeStore:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class FakeScheduler:
    """Runs until its ``cancel()``, then ends as a cancelled run does: returning."""

    def __init__(self) -> None:
        self.cancelled = anyio.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    async def run(self) -> str:
        await self.cancelled.wait()
        return "cancelled"


class Noting(StopSignals):
    """Sets :attr:`got` once it has acted on a signal."""

    def __init__(self) -> None:
        super().__init__()
        self.got = anyio.Event()

    def _got(self, signum: int) -> None:
        super()._got(signum)
        self.got.set()


async def _opened(store: FakeStore) -> FakeStore:
    return store


async def test_a_signal_during_the_run_cancels_it_through_its_scheduler() -> None:
    store = FakeStore()
    seen: list[Any] = []

    async def start(opened: FakeStore, hooks: list[Any],
                    on_scheduler: Callable[[Any], None]) -> str:
        seen.extend(hooks)
        sched = FakeScheduler()
        on_scheduler(sched)
        os.kill(os.getpid(), signal.SIGTERM)
        with anyio.fail_after(10):
            return await sched.run()

    with StopSignals() as stops:
        result = await run_stopping(stops, lambda: _opened(store), start, what="the run")
    assert result == "cancelled" and stops.signal == signal.SIGTERM
    assert store.closed and seen[-1] == stops.hook


async def test_a_signal_before_the_scheduler_cancels_it_as_it_is_handed_over() -> None:
    """Between the store's opening and the run's start (resume reads the recorded
    events there) nothing is cancelled from outside: the run starts, and is cancelled
    at once through its scheduler, so that it is recorded as a cancelled run."""
    store = FakeStore()

    async def start(opened: FakeStore, hooks: list[Any],
                    on_scheduler: Callable[[Any], None]) -> str:
        os.kill(os.getpid(), signal.SIGINT)
        with anyio.fail_after(10):  # what reading the events does meanwhile
            await stops.got.wait()
        sched = FakeScheduler()
        on_scheduler(sched)
        assert sched.cancelled.is_set()
        return await sched.run()

    with Noting() as stops:
        result = await run_stopping(stops, lambda: _opened(store), start, what="the run")
    assert result == "cancelled" and store.closed


async def test_a_signal_while_the_store_opens_starts_no_run() -> None:
    started: list[bool] = []

    async def opening() -> FakeStore:
        os.kill(os.getpid(), signal.SIGTERM)
        await anyio.sleep(60)
        return FakeStore()

    async def start(opened: FakeStore, hooks: list[Any],
                    on_scheduler: Callable[[Any], None]) -> str:
        started.append(True)
        return "ran"

    with StopSignals() as stops, pytest.raises(Failure) as info:
        with anyio.fail_after(10):
            await run_stopping(stops, opening, start, what="the resumed run")
    assert str(info.value) == "interrupted before the resumed run started"
    assert info.value.code == 143 and not started
