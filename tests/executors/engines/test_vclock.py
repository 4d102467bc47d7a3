"""The virtual clock: sleeps and timeouts cost no wall time, in order."""

from __future__ import annotations

import time

import anyio
import pytest

from executors.engines import run_virtual

pytestmark = pytest.mark.anyio


async def test_an_hour_of_sleeping_takes_no_wall_time() -> None:
    order: list[int] = []

    async def sleeper(seconds: int) -> None:
        await anyio.sleep(seconds)
        order.append(seconds)

    wall = time.perf_counter()
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for seconds in (3600, 60, 1):
            tg.start_soon(sleeper, seconds)
    assert anyio.current_time() - start == pytest.approx(3600)
    assert order == [1, 60, 3600]
    assert time.perf_counter() - wall < 2


async def test_timeouts_use_the_virtual_clock() -> None:
    with anyio.move_on_after(30) as scope:
        await anyio.sleep(120)
    assert scope.cancelled_caught
    assert anyio.current_time() == pytest.approx(30, abs=0.01)


def test_run_virtual_returns_the_result() -> None:
    async def main(x: int) -> float:
        await anyio.sleep(86_000)
        return x + anyio.current_time()

    assert run_virtual(main, 1) == pytest.approx(86_001)
