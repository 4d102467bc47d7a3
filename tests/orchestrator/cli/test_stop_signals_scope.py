"""StopSignals.cancels: the scope that a stop signal cancels around what comes before a
run's scheduler is handed over (the opening of the store), also when the signal came
before the scope was entered. The process signals itself; the handler only writes to a
socket, which `watch` reads."""

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
    """A scope entered after a signal is cancelled at once: what it holds does not
    run."""
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
