"""OpenAIBackend against servers that misbehave: each problem is one line naming what to
fix, retryable only where another try can help, and tokens the server reported count."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from executors.llm import OpenAIBackend
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    StepTimeout,
    is_retryable,
)
from orchestrator.runtime.contracts import LLMRequest, LLMResponse, Usage
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio

Answer = Callable[["_Handler"], None]


class RawServer(ThreadingHTTPServer):
    """Answers each POST with the next scripted function, which writes what it likes."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[Answer] = deque()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: RawServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.script.popleft()(self)


@pytest.fixture
def server() -> Iterator[RawServer]:
    srv = RawServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def reply(status: int, body: Any, content_type: str = "application/json") -> Answer:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()

    def answer(handler: _Handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    return answer


def sse(*events: Any, done: bool = True) -> Answer:
    """A stream of the given events (dicts as JSON, str as they are), then the end."""

    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for event in events:
            data = event if isinstance(event, str) else json.dumps(event)
            handler.wfile.write(f"data: {data}\n\n".encode())
        if done:
            handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()
        handler.close_connection = True

    return answer


def delta(content: str | None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}


def completion(message: dict[str, Any] | None, finish: str = "stop") -> dict[str, Any]:
    choices = [] if message is None else [
        {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": choices,
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}}


def backend(base_url: str, **fields: Any) -> OpenAIBackend:
    return OpenAIBackend(ModelConfig(backend="openai", model="m", base_url=base_url, **fields))


def ask(prompt: str = "Hi", **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": prompt}], **fields)


async def streamed(b: OpenAIBackend, request: LLMRequest) -> LLMResponse:
    async for chunk in b.stream(request):
        if chunk.final is not None:
            return chunk.final
    raise AssertionError("no final chunk")


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "problem"), [
    ("not a url", "holds whitespace"),
    ("http://127.0.0.1:8000/v1 ", "holds whitespace"),
    ("127.0.0.1:8000/v1", "is not an http(s) URL"),
    ("ftp://127.0.0.1/v1", "is not an http(s) URL"),
    ("http:///v1", "is not an http(s) URL"),
    ("http://127.0.0.1:99999/v1", "has a bad port"),  # was an ExceptionGroup at the call
    ("http://[::1:8000/v1", "is not a URL: Invalid IPv6 URL"),  # was urlsplit's ValueError
])
def test_a_base_url_that_is_not_an_http_url_is_a_config_error(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"base_url {url!r} {problem}")):
        backend(url)


def test_a_bad_base_url_from_the_environment_names_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_OPENAI_BASE_URL", "localhost:8000")
    with pytest.raises(ConfigError, match=r"\$PONDER_OPENAI_BASE_URL 'localhost:8000'"):
        OpenAIBackend(ModelConfig(backend="openai", model="m"))


# -- error statuses -----------------------------------------------------------------------


async def test_an_unauthorized_key_names_where_it_came_from(
        server: RawServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-wrong")
    server.script.append(reply(401, {"error": {"message": "Incorrect API key provided",
                                               "code": "invalid_api_key"}}))
    b = backend(f"{server.root}/v1", api_key_env="MY_KEY")
    with pytest.raises(BackendHTTPError) as info:
        await b.complete(ask())
    await b.aclose()
    assert str(info.value) == (f"{server.root}/v1/chat/completions: HTTP 401: Incorrect API "
                               "key provided (check the API key in $MY_KEY)")
    assert not is_retryable(info.value)


async def test_not_found_without_v1_says_so(server: RawServer) -> None:
    server.script.append(reply(404, b"Not Found", "text/plain"))
    b = backend(server.root)
    with pytest.raises(BackendHTTPError, match=r"HTTP 404: Not Found \(is base_url right\? "
                       r"'http://127\.0\.0\.1:\d+/?' does not end in /v1"):
        await b.complete(ask())
    await b.aclose()


async def test_not_found_at_v1_names_the_model(server: RawServer) -> None:
    server.script.append(reply(404, b"<html><body>nope</body></html>", "text/html"))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendHTTPError) as info:
        await b.stream(ask()).__anext__()
    await b.aclose()
    assert str(info.value).endswith(f": HTTP 404 (is model 'm' served at '{server.root}/v1/'?)")


async def test_a_long_server_error_is_one_line(server: RawServer) -> None:
    trace = "1 validation error:\n  {'loc': ('body',)}\n\n  File \"app.py\", line 3\n" + "x" * 900
    server.script.append(reply(500, {"error": {"message": trace}}))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendHTTPError) as info:
        await b.complete(ask())
    await b.aclose()
    message = str(info.value)
    assert "\n" not in message and "Error code" not in message
    assert ": HTTP 500: 1 validation error: {'loc': ('body',)} File \"app.py\"" in message
    assert len(message) < 400 and message.endswith("...")
    assert is_retryable(info.value)


def busy(status: int, retry_after: str | None) -> Answer:
    """A full server's answer, with its ``Retry-After`` header when given."""
    payload = json.dumps({"error": {"message": "the queue is full"}}).encode()

    def answer(handler: _Handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        if retry_after is not None:
            handler.send_header("Retry-After", retry_after)
        handler.end_headers()
        handler.wfile.write(payload)
    return answer


@pytest.mark.parametrize(("status", "header", "seconds"), [
    (503, "7", 7.0),
    (429, "0.5", 0.5),
    (503, None, None),
    (503, "soon", None),  # unreadable: as if not given
    (503, "-3", 0.0),
])
async def test_a_busy_answer_keeps_the_servers_retry_after(
        server: RawServer, status: int, header: str | None, seconds: float | None) -> None:
    server.script.append(busy(status, header))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendHTTPError) as info:
        await b.complete(ask())
    await b.aclose()
    assert info.value.status == status
    assert info.value.retry_after_s == seconds
    assert "the queue is full" in str(info.value)


async def test_a_retry_after_given_as_a_date_is_the_seconds_until_then(
        server: RawServer) -> None:
    from email.utils import formatdate

    server.script.append(busy(503, formatdate(time.time() + 30, usegmt=True)))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendHTTPError) as info:
        await streamed(b, ask())
    await b.aclose()
    assert info.value.retry_after_s is not None and 25 < info.value.retry_after_s <= 30


@pytest.mark.parametrize("status", [500, 400])
async def test_a_server_refusing_json_schema_output_gets_a_hint_at_once(
        server: RawServer, status: int) -> None:
    """The same request gets the same refusal: a 500 saying so is not retried (it was a
    retryable HTTP error, so every attempt of the step was spent before the hint)."""
    server.script.append(reply(status, {"detail": "response_format: 'json_schema' is not one "
                                                  "of 'text', 'json_object'"}))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError, match=rf"HTTP {status}: .* \(the server does not take "
                       r"response_format json_schema: set `options: \{structured_outputs: "
                       r"json_object\}`") as info:
        await b.complete(ask(json_schema={"type": "object"}))
    await b.aclose()
    assert not is_retryable(info.value)


async def test_a_transient_500_of_a_json_schema_request_is_still_retryable(
        server: RawServer) -> None:
    server.script.append(reply(500, {"error": {"message": "CUDA out of memory while sampling "
                                                          "with json_schema"}}))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendHTTPError) as info:
        await b.complete(ask(json_schema={"type": "object"}))
    await b.aclose()
    assert is_retryable(info.value)
    assert "structured_outputs" not in str(info.value)


async def test_a_base_url_ending_in_chat_completions_gets_a_hint(server: RawServer) -> None:
    server.script.append(reply(404, b"Not Found", "text/plain"))
    b = backend(f"{server.root}/v1/chat/completions")
    with pytest.raises(BackendHTTPError) as info:
        await b.complete(ask())
    await b.aclose()
    assert str(info.value).endswith(
        f"HTTP 404: Not Found (base_url '{server.root}/v1/chat/completions/' ends in "
        f"/chat/completions, which the client adds: use '{server.root}/v1')")


async def test_tokens_reported_with_an_error_status_are_counted(server: RawServer) -> None:
    server.script.append(reply(400, {"error": {"message": "bad stop"},
                                     "usage": {"prompt_tokens": 7, "completion_tokens": 2}}))
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with pytest.raises(BackendHTTPError, match=r"HTTP 400: bad stop$"):
        await b.complete(ask(usage=counted))
    await b.aclose()
    assert (counted.prompt_tokens, counted.completion_tokens) == (7, 2)


# -- answers that are not usable ------------------------------------------------------


@pytest.mark.parametrize("body", [b"<html>hi</html>", b"[1, 2]"])
async def test_an_answer_that_is_not_a_chat_completion(server: RawServer, body: bytes) -> None:
    server.script.append(reply(200, body, "text/html" if body.startswith(b"<") else
                               "application/json"))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError, match="the answer is not a chat completion: ") as info:
        await b.complete(ask())
    await b.aclose()
    assert "AttributeError" not in str(info.value)
    assert not is_retryable(info.value)


async def test_no_choices_is_an_error_and_its_tokens_count(server: RawServer) -> None:
    server.script.append(reply(200, completion(None)))
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with pytest.raises(BackendError, match="the answer has no choices"):
        await b.complete(ask(usage=counted))
    await b.aclose()
    assert (counted.prompt_tokens, counted.completion_tokens) == (11, 3)


@pytest.mark.parametrize(("message", "why"), [
    ({"content": None}, "finish_reason 'stop'"),
    ({"content": None, "refusal": "I can't help\nwith that."},
     "the model refused: I can't help with that."),
])
async def test_content_null_is_an_error(server: RawServer, message: dict[str, Any],
                                        why: str) -> None:
    """It was an empty answer that succeeded (an empty string, or a schema failure)."""
    server.script.append(reply(200, completion(message)))
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with pytest.raises(BackendError) as info:
        await b.complete(ask(usage=counted))
    await b.aclose()
    assert str(info.value).endswith(f": the answer has no text (content: null; {why})")
    assert counted.total == 14


def _answer_with_message(message: Any) -> dict[str, Any]:
    body = completion({"content": "unused"})
    body["choices"][0]["message"] = message
    return body


@pytest.mark.parametrize(("body", "said"), [
    (completion({"content": 42}), "the answer's content is a number, not text: '42'"),
    (completion({"content": ["a", "b"]}),
     """the answer's content is an array, not text: '["a", "b"]'"""),
    (completion({"content": True}), "the answer's content is a boolean, not text: 'true'"),
    (_answer_with_message("hello"), "the answer is not a chat completion (its message is "
     "a string, not an object): 'hello'"),
    (_answer_with_message([1]), "the answer is not a chat completion (its message is an "
     "array, not an object): '[1]'"),
    (_answer_with_message(None), "the answer has no text (no message; finish_reason "
     "'stop')"),
    ({**completion(None), "choices": ["hello"]}, "the answer is not a chat completion (a "
     "choice is a string, not an object): 'hello'"),
])
@pytest.mark.parametrize("streaming", [False, True])
async def test_content_of_the_wrong_shape_is_named(server: RawServer, body: dict[str, Any],
                                                   said: str, streaming: bool) -> None:
    """Each was "the answer has no text (content: null; ...)", whatever came. (A stream
    request answered by one JSON body is read as that answer.)"""
    server.script.append(reply(200, body))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError) as info:
        await (streamed(b, ask()) if streaming else b.complete(ask()))
    await b.aclose()
    assert str(info.value) == f"{server.root}/v1/: {said}"
    assert not is_retryable(info.value)


# -- streams --------------------------------------------------------------------------------


async def test_a_stream_without_any_event_is_an_error(server: RawServer) -> None:
    """What llama.cpp's server sends for a streamed prompt longer than its context: 200
    and nothing. It was a successful empty answer. It is retryable: a connection dropped
    right after the headers looks the same (test_llm_openai_empty_stream.py)."""
    server.script.append(sse(done=False))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendUnavailable, match="the server sent an empty stream") as info:
        await streamed(b, ask())
    await b.aclose()
    assert is_retryable(info.value)
    assert b.stats.failed == 1


async def test_a_json_answer_to_a_stream_request_is_read_as_the_answer(
        server: RawServer) -> None:
    """A server that does not stream sends the whole answer as one JSON body (see
    test_llm_openai_unstreamed.py); it was an error, "the server sent an empty stream"."""
    server.script.append(reply(200, completion({"content": "hello"})))
    b = backend(f"{server.root}/v1")
    response = await streamed(b, ask())
    assert response.text == "hello" and response.ttft_s is None
    await b.aclose()


async def test_a_stream_cut_before_its_finish_reason_is_retryable(server: RawServer) -> None:
    """It was a successful answer holding only the text received before the cut."""
    server.script.append(sse(delta("hel"), done=False))
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with pytest.raises(BackendUnavailable) as info:
        await streamed(b, ask(usage=counted))
    await b.aclose()
    assert str(info.value) == (
        f"{server.root}/v1/: the stream ended before the answer was finished (no "
        "finish_reason): the server cut it. llama.cpp's Python server cuts a stream when "
        "another request arrives: start it with `--interrupt_requests False`, or give this "
        "model `concurrency: 1`")
    assert is_retryable(info.value)
    assert counted.completion_tokens == 1
    assert info.value.raw_output == "hel"


async def test_a_stream_event_that_is_not_json(server: RawServer) -> None:
    server.script.append(sse(delta("hel"), "{not json", done=False))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError) as info:
        await streamed(b, ask())
    await b.aclose()
    assert str(info.value).endswith(": the server sent a stream event that is not JSON: "
                                    "'{not json'")


async def test_a_complete_stream_still_succeeds(server: RawServer) -> None:
    server.script.append(sse(delta("hel"), delta("lo", "length")))
    b = backend(f"{server.root}/v1")
    with anyio.fail_after(5):
        final = await streamed(b, ask())
    await b.aclose()
    assert (final.text, final.finish_reason) == ("hello", "length")


# -- streams that never finish ----------------------------------------------------------

KEEP_ALIVE = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake",
              "choices": [{"index": 0, "delta": {}, "finish_reason": None}]}
ROLE_ONLY = {**KEEP_ALIVE, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                        "finish_reason": None}]}
#: the longest a trickling answer goes on when the client never leaves
TRICKLE_LIMIT_S = 20.0


def trickle(head: list[Any], tick: Any, interval_s: float, ticks: int | None = None,
            end: list[Any] | None = None) -> Answer:
    """A stream of ``head`` events, then ``tick`` every ``interval_s`` (a dict as a data
    event, a str written as it is, such as an SSE comment), ``ticks`` times (forever,
    until the client leaves, when ``None``), then ``end`` and ``[DONE]``."""

    def write(handler: _Handler, event: Any) -> None:
        raw = event if isinstance(event, str) else f"data: {json.dumps(event)}\n\n"
        handler.wfile.write(raw.encode())
        handler.wfile.flush()

    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        handler.close_connection = True
        try:
            for event in head:
                write(handler, event)
            deadline = time.monotonic() + TRICKLE_LIMIT_S
            sent = 0
            while (ticks is None or sent < ticks) and time.monotonic() < deadline:
                time.sleep(interval_s)
                write(handler, tick)
                sent += 1
            for event in [*(end or []), "data: [DONE]\n\n"]:
                write(handler, event)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left

    return answer


@pytest.mark.parametrize("tick", [KEEP_ALIVE, ROLE_ONLY, ": keep-alive\n\n"],
                         ids=["empty-delta", "role-only", "sse-comment"])
async def test_a_stream_that_stalls_after_its_text_began_fails_at_its_idle_limit(
        server: RawServer, tick: Any) -> None:
    """It went on until a step's timeout_s, which is unset by default: for ever."""
    server.script.append(trickle([delta("hel"), delta("lo")], tick, 0.02))
    b = backend(f"{server.root}/v1", options={"idle_timeout_s": 0.3})
    counted = Usage()
    start = time.monotonic()
    with anyio.fail_after(5), pytest.raises(StepTimeout) as info:
        await streamed(b, ask(usage=counted))
    waited = time.monotonic() - start
    await b.aclose()
    assert str(info.value) == (f"{server.root}/v1/: the stream sent no content for 0.3 s "
                               "(options.idle_timeout_s): the server stalled")
    assert 0.3 <= waited < 2
    assert is_retryable(info.value)
    assert info.value.raw_output == "hello"  # the text received is kept for the trace
    assert counted.completion_tokens == 2
    assert (b.stats.failed, b.stats.cancelled, b.stats.completion_tokens) == (1, 0, 2)


async def test_a_slow_stream_that_keeps_sending_text_is_not_idle(server: RawServer) -> None:
    server.script.append(trickle([delta("a")], delta("b"), 0.1, ticks=8,
                                 end=[delta("", "stop")]))
    b = backend(f"{server.root}/v1", options={"idle_timeout_s": 0.4})
    with anyio.fail_after(5):
        final = await streamed(b, ask())
    await b.aclose()
    assert (final.text, final.finish_reason) == ("a" + "b" * 8, "stop")


async def test_a_stream_that_trickles_text_forever_fails_at_its_total_limit(
        server: RawServer) -> None:
    server.script.append(trickle([delta("a")], delta("b"), 0.02))
    b = backend(f"{server.root}/v1", options={"total_timeout_s": 0.5})
    with anyio.fail_after(5), pytest.raises(StepTimeout) as info:
        await streamed(b, ask())
    await b.aclose()
    assert str(info.value) == (f"{server.root}/v1/: the answer was not finished within 0.5 s "
                               "(options.total_timeout_s)")
    assert (info.value.raw_output or "").startswith("abbb")


async def test_keep_alives_before_any_text_are_bounded_by_the_total_limit(
        server: RawServer) -> None:
    """The wait for the first token (a queue, a long prompt) is not idleness: only the
    total limit bounds it."""
    server.script.append(trickle([], KEEP_ALIVE, 0.02))
    b = backend(f"{server.root}/v1", options={"idle_timeout_s": 0.1, "total_timeout_s": 0.8})
    start = time.monotonic()
    with anyio.fail_after(5), pytest.raises(StepTimeout, match=r"options\.total_timeout_s"):
        await streamed(b, ask())
    assert time.monotonic() - start >= 0.8
    await b.aclose()


async def test_an_answer_that_trickles_its_body_fails_at_the_total_limit(
        server: RawServer) -> None:
    """A byte now and then resets the HTTP client's read timeout (request_timeout_s)."""

    def drip(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        deadline = time.monotonic() + TRICKLE_LIMIT_S
        try:
            while time.monotonic() < deadline:
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass

    server.script.append(drip)
    b = backend(f"{server.root}/v1", request_timeout_s=0.3, options={"total_timeout_s": 0.6})
    with anyio.fail_after(5), pytest.raises(StepTimeout) as info:
        await b.complete(ask())
    await b.aclose()
    assert str(info.value) == (f"{server.root}/v1/: the answer was not finished within 0.6 s "
                               "(options.total_timeout_s)")
    assert (b.stats.failed, b.stats.cancelled) == (1, 0)


def test_the_limits_have_defaults_and_take_null() -> None:
    b = backend("http://127.0.0.1:1/v1")
    assert (b.options.idle_timeout_s, b.options.total_timeout_s) == (120.0, 1800.0)
    b = backend("http://127.0.0.1:1/v1", options={"idle_timeout_s": None,
                                                   "total_timeout_s": None})
    assert (b.options.idle_timeout_s, b.options.total_timeout_s) == (None, None)
    with pytest.raises(ConfigError, match=r"idle_timeout_s.*greater than 0"):
        backend("http://127.0.0.1:1/v1", options={"idle_timeout_s": 0})


# -- what a broken stream leaves --------------------------------------------------------


async def test_a_stream_whose_connection_drops_keeps_its_text_and_tokens(
        server: RawServer) -> None:
    def cut(handler: _Handler) -> None:  # chunked encoding, cut in the middle of a chunk
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        event = f"data: {json.dumps(delta('hel'))}\n\n".encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        handler.wfile.write(b"400\r\ndata: {")
        handler.wfile.flush()
        handler.close_connection = True

    server.script.append(cut)
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with anyio.fail_after(5), pytest.raises(BackendUnavailable) as info:
        await streamed(b, ask("x" * 20, usage=counted))
    await b.aclose()
    assert "the connection was lost during the stream" in str(info.value)
    assert info.value.raw_output == "hel"
    assert (counted.prompt_tokens, counted.completion_tokens) == (5, 1)
    assert (b.stats.prompt_tokens, b.stats.completion_tokens) == (5, 1)


async def test_a_connection_reset_says_so(unused_port: int) -> None:
    """An empty ReadError: the message ended in ': ' with nothing after it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def reset() -> None:
            conn, _ = listener.accept()
            conn.recv(1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

        thread = threading.Thread(target=reset, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        b = backend(url)
        with anyio.fail_after(5), pytest.raises(BackendUnavailable) as info:
            await b.complete(ask())
        await b.aclose()
        thread.join(5)
    message = str(info.value)
    assert message.startswith(f"cannot reach {url}/chat/completions: ")
    assert not message.endswith(": ")
    assert "reset" in message.lower()


async def test_a_stream_without_usage_counts_its_prompt(server: RawServer) -> None:
    """llama.cpp's server sends no usage chunk: the prompt counted 0 tokens."""
    server.script.append(sse(delta("hel"), delta("lo", "stop")))
    b = backend(f"{server.root}/v1")
    with anyio.fail_after(5):
        final = await streamed(b, ask("x" * 20))
    await b.aclose()
    assert (final.prompt_tokens, final.completion_tokens) == (5, 2)


@pytest.mark.parametrize(("usage", "counted"), [
    ({"prompt_tokens": -5, "completion_tokens": 10**30}, None),
    ({"prompt_tokens": 7, "completion_tokens": -1}, (7, 0)),
    ({"prompt_tokens": True, "completion_tokens": 2.5}, None),
    ({"prompt_tokens": 2**53, "completion_tokens": 2}, (2**53, 2)),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_usage_that_is_no_token_count_is_taken_as_not_reported(
        server: RawServer, usage: dict[str, Any], counted: tuple[int, int] | None,
        stream: bool) -> None:
    """A count past a 64-bit integer failed the trace store's write ("internal error",
    and the same on every resume); a negative one was recorded as it came."""
    body = {**completion({"content": "hello"}), "usage": usage}
    if stream:
        server.script.append(sse(delta("hel"), delta("lo", "stop"),
                                 {**delta(None), "choices": [], "usage": usage}))
    else:
        server.script.append(reply(200, body))
    b = backend(f"{server.root}/v1")
    with anyio.fail_after(5):
        final = await (streamed(b, ask("x" * 20)) if stream else b.complete(ask("x" * 20)))
    await b.aclose()
    assert final.text == "hello"
    # not reported: estimated, the prompt (5) and the answer's text or chunks (2)
    expected = counted or (5, 2)
    assert (final.prompt_tokens, final.completion_tokens) == expected


# -- stream chunks of the wrong shape, error events ------------------------------------


def _choice(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None,
                         **fields}]}


@pytest.mark.parametrize("event", [
    {"choices": "x"},
    {"choices": ["x"]},
    _choice(delta="x"),
    _choice(delta={"content": 5}),
    _choice(index="a"),
    _choice(finish_reason=3),
], ids=["choices-text", "choice-text", "delta-text", "content-number", "index-text",
        "finish-number"])
async def test_a_stream_chunk_of_the_wrong_shape_is_named_keeping_what_came(
        server: RawServer, event: dict[str, Any]) -> None:
    # it raised Python's TypeError (or went on with a wrong text) before
    server.script.append(sse(delta("hel"), event, delta("lo", "stop")))
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with pytest.raises(BackendError) as info:
        await streamed(b, ask(usage=counted))
    await b.aclose()
    assert ": the server sent a stream chunk that is not a chat completion chunk: '{" in str(
        info.value)
    assert not is_retryable(info.value)
    assert info.value.raw_output == "hel" and counted.completion_tokens == 1


async def test_an_answer_whose_choice_index_is_not_a_number_is_named(
        server: RawServer) -> None:
    body = completion({"content": "hi"})
    body["choices"][0]["index"] = "a"
    body["choices"].append({"index": 1, "message": {"role": "assistant", "content": "yo"},
                            "finish_reason": "stop"})
    server.script.append(reply(200, body))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError, match=r"the answer is not a chat completion \(a "
                                           r"choice's index is not a number\)"):
        await b.complete(ask())
    await b.aclose()


@pytest.mark.parametrize(("code", "status"), [(500, 500), ("503", 503), (None, None)])
async def test_an_error_event_in_a_stream_says_its_status(
        server: RawServer, code: Any, status: int | None) -> None:
    # vLLM's server sends {"error": {..., "code": 500}} when the engine fails after the
    # answer began: an HTTP error of that status (a 5xx is retried); without a code it
    # stays a BackendError, which is not
    error = {"message": "EngineCore encountered an issue", "type": "InternalServerError",
             **({"code": code} if code is not None else {})}
    server.script.append(sse(delta("hel"), {"error": error}, done=False))
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with pytest.raises(BackendError) as info:
        await streamed(b, ask(usage=counted))
    await b.aclose()
    assert info.value.raw_output == "hel" and counted.completion_tokens == 1
    if status is None:
        assert type(info.value) is BackendError and not is_retryable(info.value)
        assert str(info.value).endswith(": EngineCore encountered an issue")
        return
    assert isinstance(info.value, BackendHTTPError) and info.value.status == status
    assert is_retryable(info.value)
    assert str(info.value).endswith(
        f"/v1/chat/completions: the server reported an error during the stream: HTTP "
        f"{status}: EngineCore encountered an issue")


def _raw(payload: bytes, content_type: str) -> Answer:
    def answer(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    return answer


@pytest.mark.parametrize(("payload", "words"), [
    (b"{not json", "an answer that is not JSON: '{not json'"),
    (b"", "an empty answer (no body): the connection was dropped right after the headers, "
          "or the server failed on the request (a prompt longer than its context?)"),
])
async def test_an_answer_that_is_not_json_is_not_called_a_stream_event(
        server: RawServer, payload: bytes, words: str) -> None:
    server.script.append(_raw(payload, "application/json"))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError) as info:
        await b.complete(ask())
    await b.aclose()
    assert str(info.value).endswith(": the server sent " + words)


async def test_a_stream_of_bytes_that_are_not_utf8_is_named(server: RawServer) -> None:
    # Python's UnicodeDecodeError came out of the stream before
    server.script.append(_raw(b"data: \xff\xfe\n\n", "text/event-stream"))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError) as info:
        await streamed(b, ask())
    await b.aclose()
    assert ": the server sent bytes that are not UTF-8 (invalid start byte at byte " in str(
        info.value)
    assert not is_retryable(info.value)


async def test_a_whole_answer_without_usage_counts_its_prompt_and_text(
        server: RawServer) -> None:
    """A server that reports no usage in a whole answer: the step recorded 0 tokens, and
    a budget_tokens never saw any (a stream without usage was estimated already)."""
    body = completion({"content": "hello there!"})
    del body["usage"]
    server.script.append(reply(200, body))
    b = backend(server.root + "/v1")
    counted = Usage()
    response = await b.complete(ask("x" * 20, usage=counted))
    assert (response.prompt_tokens, response.completion_tokens) == (5, 3)
    assert (counted.prompt_tokens, counted.completion_tokens) == (5, 3)
    assert (b.stats.prompt_tokens, b.stats.completion_tokens) == (5, 3)


def _delta_of(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


_TOOL_CALL = {"index": 0, "id": "t1", "type": "function",
              "function": {"name": "lookup", "arguments": "{}"}}


@pytest.mark.parametrize(("events", "says"), [
    ([_delta_of(role="assistant"), _delta_of(tool_calls=[_TOOL_CALL]),
      delta(None, "tool_calls")],
     "no text (its stream sent no content, only tool_calls; finish_reason 'tool_calls')"),
    ([_delta_of(reasoning_content="Let me think"), delta(None, "length")],
     "no text (its stream sent no content, only reasoning_content; finish_reason 'length')"),
    ([_delta_of(refusal="I can't"), _delta_of(refusal=" help."), delta(None, "stop")],
     "no text (its stream sent no content, only refusal; the model refused: I can't help.)"),
])
async def test_a_stream_without_content_but_a_tool_call_or_thinking_has_no_text(
        server: RawServer, events: list[Any], says: str) -> None:
    """The same answer whole (content: null) failed; streamed (a step a first-finish join
    may cancel) it succeeded with the output ''."""
    server.script.append(sse(*events))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError) as info, anyio.fail_after(5):
        await streamed(b, ask())
    await b.aclose()
    assert str(info.value).endswith(says)
    assert not is_retryable(info.value)
    assert b.stats.failed == 1 and b.stats.completed == 0


async def test_a_stream_that_thinks_and_then_answers_is_its_answer(server: RawServer) -> None:
    server.script.append(sse(_delta_of(reasoning_content="hmm"), delta("42"),
                             delta(None, "stop")))
    b = backend(f"{server.root}/v1")
    with anyio.fail_after(5):
        final = await streamed(b, ask())
    await b.aclose()
    assert (final.text, final.finish_reason) == ("42", "stop")
