"""OpenAIBackend against servers that misbehave: each problem is one line naming what to
fix, retryable only where another try can help, and tokens the server reported count."""

from __future__ import annotations

import json
import re
import threading
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


def ask(**fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "Hi"}], **fields)


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


async def test_a_server_refusing_json_schema_output_gets_a_hint(server: RawServer) -> None:
    server.script.append(reply(500, {"detail": "response_format: 'json_schema' is not one of "
                                               "'text', 'json_object'"}))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendHTTPError, match=r"set `options: \{structured_outputs: "
                       r"json_object\}`"):
        await b.complete(ask(json_schema={"type": "object"}))
    await b.aclose()


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


# -- streams --------------------------------------------------------------------------------


async def test_a_stream_without_any_event_is_an_error(server: RawServer) -> None:
    """What llama.cpp's server sends for a streamed prompt longer than its context: 200
    and nothing. It was a successful empty answer."""
    server.script.append(sse(done=False))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError, match="the server sent an empty stream") as info:
        await streamed(b, ask())
    await b.aclose()
    assert not is_retryable(info.value)
    assert b.stats.failed == 1


async def test_a_json_answer_to_a_stream_request_is_an_error(server: RawServer) -> None:
    server.script.append(reply(200, completion({"content": "hello"})))
    b = backend(f"{server.root}/v1")
    with pytest.raises(BackendError, match="the server sent an empty stream"):
        await streamed(b, ask())
    await b.aclose()


async def test_a_stream_cut_before_its_finish_reason_is_retryable(server: RawServer) -> None:
    """It was a successful answer holding only the text received before the cut."""
    server.script.append(sse(delta("hel"), done=False))
    b = backend(f"{server.root}/v1")
    counted = Usage()
    with pytest.raises(BackendUnavailable, match="the stream ended before the answer was "
                       "finished") as info:
        await streamed(b, ask(usage=counted))
    await b.aclose()
    assert is_retryable(info.value)
    assert counted.completion_tokens == 1


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
