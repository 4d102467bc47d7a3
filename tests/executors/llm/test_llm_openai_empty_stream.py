"""An OpenAI-compatible answer with nothing in it: 200, headers, then no stream event
(a streamed request) or no body (a whole one).

At the HTTP level a server that dropped the connection right after its headers (a body
delimited by the connection's close) cannot be told from one that answered 200 with an
empty body: both are retried, as a lost connection is (by the step's retry policy; an
engine pool tries another engine), and a server that keeps answering nothing ends the
step with one clear error once the retries run out. It was a BackendError, not retried.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import BackendUnavailable, is_retryable
from orchestrator.spec.models import WorkflowSpec
from tests.executors.llm.test_llm_openai_errors import (
    RawServer,
    ask,
    backend,
    completion,
    delta,
    reply,
    sse,
    streamed,
)

pytestmark = pytest.mark.anyio

WHY = ("the connection was dropped right after the headers, or the server failed on the "
       "request (a prompt longer than its context?)")
EMPTY_STREAM = f"the server sent an empty stream (no event): {WHY} or does not stream"
EMPTY_ANSWER = f"the server sent an empty answer (no body): {WHY}"


def dropped(content_type: str) -> Any:
    """Headers, then the connection closes: a body delimited by the close, empty."""

    def answer(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.flush()
        handler.close_connection = True

    return answer


@pytest.fixture
def server() -> Iterator[RawServer]:
    srv = RawServer()
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _workflow(server: RawServer, max_attempts: int, step: dict[str, Any]) -> Workflow:
    return Workflow.from_spec(WorkflowSpec.model_validate({
        "name": "t",
        "models": {"default": {"backend": "openai", "model": "m",
                               "base_url": f"{server.root}/v1"}},
        "defaults": {"retry": {"max_attempts": max_attempts, "initial_backoff_s": 0,
                               "jitter": 0}},
        "steps": [{"id": "a", "prompt": "Hi", **step}]}))


def _counted(server: RawServer, answers: list[Any]) -> list[int]:
    """Script the server's answers; the returned list grows by one per request served."""
    served: list[int] = []

    def counting(answer: Any) -> Any:
        def run(handler: Any) -> None:
            served.append(1)
            answer(handler)
        return run

    server.script.extend(counting(a) for a in answers)
    return served


@pytest.mark.parametrize(("answer", "streaming", "what"), [
    (sse(done=False), True, EMPTY_STREAM),
    (dropped("text/event-stream"), True, EMPTY_STREAM),
    (dropped("application/json"), True, EMPTY_ANSWER),  # a server that does not stream
    (dropped("application/json"), False, EMPTY_ANSWER),
    (dropped("text/event-stream"), False, EMPTY_ANSWER),
    (reply(200, b""), False, EMPTY_ANSWER),  # Content-Length: 0
])
async def test_an_answer_with_nothing_in_it_is_retryable_and_says_what_may_have_happened(
        server: RawServer, answer: Any, streaming: bool, what: str) -> None:
    server.script.append(answer)
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendUnavailable) as info:
        await (streamed(b, ask()) if streaming else b.complete(ask()))
    await b.aclose()
    assert str(info.value) == f"{server.root}/v1/: {what}"
    assert is_retryable(info.value)
    assert b.stats.failed == 1


#: a step whose call is streamed (a one-sample request), and one answered whole
STREAMED = {"kind": "sample", "n": 1}
WHOLE = {"kind": "llm"}


@pytest.mark.parametrize(("step", "good", "expected"), [
    (STREAMED, sse(delta("hello", "stop")), ["hello"]),
    (WHOLE, reply(200, completion({"content": "hello"})), "hello"),
])
async def test_an_answer_dropped_after_its_headers_is_retried_by_the_step(
        server: RawServer, step: dict[str, Any], good: Any, expected: Any) -> None:
    served = _counted(server, [dropped("text/event-stream"), good])
    result = await _workflow(server, 3, step).run({})
    assert result.ok, result.error
    assert result.output == expected
    assert len(served) == 2


@pytest.mark.parametrize(("step", "said", "what"), [
    (STREAMED, "sample 'a': 1 of 1 samples failed (no join handles failures): sample 0 "
               "(child 'a[0]'): ", EMPTY_STREAM),
    (WHOLE, "", EMPTY_ANSWER)])
async def test_a_server_that_always_answers_nothing_fails_clearly_once_retries_run_out(
        server: RawServer, step: dict[str, Any], said: str, what: str) -> None:
    served = _counted(server, [sse(done=False)] * 3)
    result = await _workflow(server, 3, step).run({})
    assert not result.ok
    assert len(served) == 3
    assert result.error == f"step 'a' failed: {said}{server.root}/v1/: {what}"
