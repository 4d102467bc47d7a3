"""A step with ``retry:`` on a pool (not a member of another) all of whose engines are
busy: the pool's ``PoolBusy`` carries the soonest end of its engines' back-offs, and the
step's next attempt waits that long, as it would a server's own ``Retry-After``, instead
of the step's short back-off that would ask the busy engines again at once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import BackendHTTPError, BackendUnavailable, requested_wait_s
from orchestrator.runtime import events as ev
from tests.executors.engines.openai_servers import FullServer, member, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # real time: the engines are HTTP servers on threads of their own


@pytest.fixture
def servers() -> Iterator[Callable[..., FullServer]]:
    yield from serving(FullServer)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)


async def test_a_step_retried_after_its_pool_was_all_busy_waits_the_pools_retry_after(
        servers: Callable[..., FullServer]) -> None:
    a, b = servers(retry_after="5"), servers(retry_after="5")
    pool = {"backend": "pool", "model": "busy-pool",
            "options": {"shared": False, "busy_wait_s": 0.5,  # caps the 5 s asked
                        "members": [member(a, "a", api_key_env="PONDER_TEST_NO_SUCH_KEY"),
                                    member(b, "b", api_key_env="PONDER_TEST_NO_SUCH_KEY")]}}
    spec = {"name": "t", "models": {"default": pool},
            "steps": [{"id": "ask", "kind": "llm", "prompt": "hi",
                       "retry": {"max_attempts": 2, "initial_backoff_s": 0.01,
                                 "jitter": 0}}]}
    rec = Recorder()
    started = time.monotonic()
    result = await Workflow.from_yaml_text(json.dumps(spec)).run(hooks=[rec])
    assert not result.ok
    assert "every engine is busy" in str(result.error)
    (retrying,) = [e for e in rec.events if isinstance(e, ev.StepRetrying)]
    assert retrying.error_type == "PoolBusy"
    # the pool's soonest engine is free again about busy_wait_s after it answered busy
    assert retrying.retry_after_s is not None and 0.3 < retrying.retry_after_s <= 0.5
    assert retrying.delay_s >= retrying.retry_after_s
    assert time.monotonic() - started >= 0.3


def test_any_error_carrying_a_retry_after_asks_for_that_wait() -> None:
    class Relayed(BackendUnavailable):
        def __init__(self, message: str, retry_after_s: object) -> None:
            super().__init__(message)
            self.retry_after_s = retry_after_s

    assert requested_wait_s(Relayed("busy", 2.5)) == 2.5
    assert requested_wait_s(Relayed("busy", None)) is None
    assert requested_wait_s(Relayed("busy", "soon")) is None  # not a number: no wait
    assert requested_wait_s(Relayed("busy", True)) is None
    assert requested_wait_s(BackendUnavailable("refused")) is None
    assert requested_wait_s(BackendHTTPError("busy", status=503, retry_after_s=3)) == 3
