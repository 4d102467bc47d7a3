"""A step's own retries wait at least the server's Retry-After (an HTTP 429/503 of a
plain model, outside any engine pool), up to the policy's ``max_backoff_s``; the wait
asked for is in ``step_retrying.retry_after_s``."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import yaml

from orchestrator import Workflow
from orchestrator.errors import (
    MAX_REQUESTED_WAIT_S,
    BackendHTTPError,
    BackendUnavailable,
    requested_wait_s,
)
from orchestrator.runtime import events as ev
from orchestrator.runtime.contracts import Result, Task, Usage
from orchestrator.runtime.retry import backoff_s
from orchestrator.spec.base import RetryPolicy
from tests.executors.engines.openai_servers import JSONHandler, LocalServer, answer, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the pure parts ----------------------------------------------------------------------


def test_the_delay_is_never_shorter_than_the_wait_asked() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, jitter=0.2)
    rng = random.Random(1)
    delays = [backoff_s(policy, 1, rng, at_least_s=20) for _ in range(200)]
    assert all(20 <= d <= 24 for d in delays)
    assert max(delays) - min(delays) > 1  # spread: steps told alike do not all come back at once


def test_a_longer_back_off_of_its_own_is_kept() -> None:
    policy = RetryPolicy(initial_backoff_s=10, jitter=0)
    assert backoff_s(policy, 1, at_least_s=2) == 10


def test_max_backoff_s_caps_the_wait_asked() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=30, jitter=0)
    assert backoff_s(policy, 1, at_least_s=3600) == 30


@pytest.mark.parametrize(("asked", "wait"), [
    (None, None), (0.0, None), (-1.0, None), (float("nan"), None),
    (2.5, 2.5), (float("inf"), MAX_REQUESTED_WAIT_S), (1e12, MAX_REQUESTED_WAIT_S),
])
def test_requested_wait_reads_a_usable_retry_after(asked: float | None,
                                                   wait: float | None) -> None:
    assert requested_wait_s(BackendHTTPError("busy", status=429, retry_after_s=asked)) == wait


def test_only_an_http_error_asks_for_a_wait() -> None:
    assert requested_wait_s(BackendUnavailable("refused")) is None
    assert requested_wait_s(TimeoutError()) is None


def test_a_step_retrying_written_before_has_no_retry_after() -> None:
    old = {"kind": "step_retrying", "run_id": "r", "seq": 3, "ts": 0.0, "step_id": "a",
           "attempt": 1, "error": "503", "error_type": "BackendHTTPError", "delay_s": 0.5}
    event = ev.EVENT_ADAPTER.validate_python(old)
    assert isinstance(event, ev.StepRetrying) and event.retry_after_s is None


# -- the scheduler -----------------------------------------------------------------------


@dataclass
class Busy:
    """Runs `tool` steps: the first `busy` calls of a step answer HTTP 429 with a
    Retry-After of `retry_after_s`; the others succeed. Notes when each call started, on
    `clock` (the wall clock where a test compares the starts with the trace's times)."""

    retry_after_s: float | None
    busy: int = 1
    starts: list[float] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    async def execute(self, task: Task, ctx: Any) -> Result:
        self.starts.append(self.clock())
        if len(self.starts) <= self.busy:
            raise BackendHTTPError("429 too many requests", status=429,
                                   retry_after_s=self.retry_after_s)
        return Result(output="done", usage=Usage(3, 2))

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)

    def retrying(self) -> list[ev.StepRetrying]:
        return [e for e in self.events if e.kind == "step_retrying"]


def workflow(retry: dict[str, Any], fake: Busy) -> Workflow:
    wf = Workflow.from_yaml_text(yaml.safe_dump({"name": "t", "steps": [
        {"id": "a", "kind": "tool", "tool": "calc", "args": {}, "retry": retry}]}))
    wf.register_executor("tool", fake)
    return wf


async def test_a_step_retried_after_a_429_waits_its_retry_after() -> None:
    """The step's own back-off (0 here) was the only wait: a server that said "come back
    in 20 s" was asked again at once, and again, until the attempts ran out."""
    fake = Busy(retry_after_s=0.4)
    rec = Recorder()
    result = await workflow({"max_attempts": 3, "initial_backoff_s": 0, "jitter": 0},
                            fake).run(hooks=[rec])
    assert result.ok, result.error
    assert len(fake.starts) == 2
    assert fake.starts[1] - fake.starts[0] >= 0.4
    (retrying,) = rec.retrying()
    assert (retrying.delay_s, retrying.retry_after_s) == (0.4, 0.4)


async def test_the_wait_asked_is_capped_at_max_backoff_s() -> None:
    fake = Busy(retry_after_s=3600)
    rec = Recorder()
    t0 = time.monotonic()
    result = await workflow({"max_attempts": 2, "initial_backoff_s": 0, "max_backoff_s": 0.2,
                             "jitter": 0}, fake).run(hooks=[rec])
    assert result.ok, result.error
    assert time.monotonic() - t0 < 3
    (retrying,) = rec.retrying()
    assert (retrying.delay_s, retrying.retry_after_s) == (0.2, 3600)


async def test_without_a_retry_after_the_back_off_is_the_step_s_own() -> None:
    fake = Busy(retry_after_s=None)
    rec = Recorder()
    result = await workflow({"max_attempts": 2, "initial_backoff_s": 0.01, "jitter": 0},
                            fake).run(hooks=[rec])
    assert result.ok
    (retrying,) = rec.retrying()
    assert (retrying.delay_s, retrying.retry_after_s) == (0.01, None)


async def test_a_run_cancelled_while_it_waits_a_retry_after_stops_at_once() -> None:
    fake = Busy(retry_after_s=60, busy=5)
    rec = Recorder()
    holder: dict[str, Any] = {}

    async def cancel_soon() -> None:
        await anyio.sleep(0.2)
        holder["s"].cancel()

    t0 = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_soon)
        result = await workflow({"max_attempts": 3, "max_backoff_s": 120}, fake).run(
            hooks=[rec], on_scheduler=lambda s: holder.__setitem__("s", s))
    assert time.monotonic() - t0 < 3
    assert result.status == "cancelled"
    assert len(fake.starts) == 1
    assert [e.kind for e in rec.events if getattr(e, "step_id", None) == "a"][-1] \
        == "step_cancelled"


# -- end to end: a plain `openai` model ------------------------------------------------


class OnceBusyServer(LocalServer):
    """Answers the first POST 429 with ``Retry-After: 0.5``, the others with a chat
    completion; notes when each POST came."""

    def __init__(self) -> None:
        super().__init__(_OnceBusyHandler)
        self.posts: list[float] = []
        self.lock = threading.Lock()


class _OnceBusyHandler(JSONHandler):
    server: OnceBusyServer

    def do_POST(self) -> None:
        self.asked()
        with self.server.lock:
            self.server.posts.append(time.monotonic())
            first = len(self.server.posts) == 1
        if first:
            self.send_json(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.5"})
        else:
            self.send_json(200, answer("hello", 2))


@pytest.fixture
def servers() -> Iterator[Callable[..., OnceBusyServer]]:
    yield from serving(OnceBusyServer)


async def test_a_plain_openai_model_answering_429_is_asked_again_after_its_retry_after(
        servers: Callable[..., OnceBusyServer]) -> None:
    server = servers()
    spec = {"name": "t",
            "models": {"default": {"backend": "openai", "model": "m", "base_url": server.url,
                                   "api_key_env": "PONDER_TEST_NO_SUCH_KEY"}},
            "steps": [{"id": "ask", "kind": "llm", "prompt": "hi",
                       "retry": {"max_attempts": 2, "initial_backoff_s": 0.01}}]}
    rec = Recorder()
    result = await Workflow.from_yaml_text(json.dumps(spec)).run(hooks=[rec])
    assert result.ok, result.error
    assert len(server.posts) == 2
    assert server.posts[1] - server.posts[0] >= 0.5
    (retrying,) = rec.retrying()
    assert retrying.retry_after_s == 0.5 and 0.5 <= retrying.delay_s <= 0.6
