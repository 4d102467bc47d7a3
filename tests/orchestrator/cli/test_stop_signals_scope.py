"""StopSignals.cancels: the scope that a stop signal cancels around a run whose scheduler
is not handed over (`ponder resume`, `ponder replay`), also when the signal came before
the scope was entered (between opening the store and starting the run). The process
signals itself; the handler only writes to a socket, which `watch` reads."""

from __future__ import annotations

import os
import signal

import anyio
import anyio.lowlevel
import pytest

from orchestrator.cli._signals import StopSignals

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_signal_cancels_the_scope_it_comes_in() -> None:
    with StopSignals() as stops:
        async with anyio.create_task_group() as tg:
            await tg.start(stops.watch)
            with anyio.fail_after(10), stops.cancels() as scope:
                os.kill(os.getpid(), signal.SIGTERM)
                await anyio.sleep_forever()
            tg.cancel_scope.cancel()
    assert scope.cancelled_caught and stops.signal == signal.SIGTERM


async def test_a_signal_before_the_scope_cancels_it_as_it_is_entered() -> None:
    """The signal cancels the opening of the store; the run's scope, entered after it,
    is cancelled at once: the run does not start."""
    with StopSignals() as stops:
        async with anyio.create_task_group() as tg:
            await tg.start(stops.watch)
            with anyio.fail_after(10), stops.cancels() as opening:
                os.kill(os.getpid(), signal.SIGTERM)
                await anyio.sleep_forever()
            started = False
            with anyio.fail_after(10), stops.cancels() as running:
                await anyio.lowlevel.checkpoint()
                started = True
            tg.cancel_scope.cancel()
    assert opening.cancelled_caught and running.cancelled_caught and not started
