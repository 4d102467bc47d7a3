"""OpenAIBackend: request shape, error mapping and cancellation against a scripted HTTP
server, then the real thing against llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator

from executors.llm import LLMExecutor, OpenAIBackend
from orchestrator.errors import (
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    StepTimeout,
    is_retryable,
)
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, LLMResponse, Task, Usage
from orchestrator.spec.models import LLMStep, ModelConfig

pytestmark = pytest.mark.anyio

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def _completion(texts: list[str]) -> dict[str, Any]:
    return {
        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def _chunk(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeServer(ThreadingHTTPServer):
    """An OpenAI-shaped HTTP server that answers from a script and records requests.

    Script entries: ``("json", status, body)``, ``("sleep", seconds)`` then a
    completion, ``("stream", chunks, interval_s)``; with none left, a completion.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[tuple[Any, ...]] = deque()
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.disconnected = threading.Event()
        self.chunks_sent = 0  # content chunks of streams written so far

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append((self.path, headers, body))
        step = self.server.script.popleft() if self.server.script else ("json", 200, None)
        if step[0] == "sleep":
            time.sleep(step[1])
            step = ("json", 200, None)
        if step[0] == "json":
            payload = json.dumps(step[2] or _completion(["hello"] * body.get("n", 1))).encode()
            self.send_response(step[1])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self._stream(body, chunks=step[1], interval=step[2])

    def _stream(self, body: dict[str, Any], chunks: int, interval: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake-model"}
        n = body.get("n", 1)
        try:
            for i in range(chunks):
                for index in range(n):
                    delta = {"index": index, "delta": {"content": f"t{i} "},
                             "finish_reason": None}
                    self.wfile.write(_chunk({**base, "choices": [delta]}))
                self.wfile.flush()
                self.server.chunks_sent += 1
                time.sleep(interval)
            for index in range(n):
                end = {"index": index, "delta": {}, "finish_reason": "stop"}
                self.wfile.write(_chunk({**base, "choices": [end]}))
            if body.get("stream_options", {}).get("include_usage"):
                usage = {"prompt_tokens": 5, "completion_tokens": chunks * n, "total_tokens": 0}
                self.wfile.write(_chunk({**base, "choices": [], "usage": usage}))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnected.set()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def backend(base_url: str, **fields: Any) -> OpenAIBackend:
    return OpenAIBackend(ModelConfig(backend="openai", model="m", base_url=base_url, **fields))


def ask(prompt: str = "Hi", **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": prompt}], **fields)


# -- configuration ----------------------------------------------------------------


async def test_is_an_llm_backend(server: FakeServer) -> None:
    b = backend(server.url)
    assert isinstance(b, LLMBackend)
    assert OpenAIBackend.default_concurrency == 16
    await b.aclose()


def test_model_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PONDER_OPENAI_MODEL", raising=False)
    with pytest.raises(ConfigError, match="PONDER_OPENAI_MODEL"):
        OpenAIBackend(ModelConfig(backend="openai", base_url="http://127.0.0.1:1/v1"))


def test_a_key_is_required_without_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("PONDER_OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match=r"\$MY_KEY"):
        OpenAIBackend(ModelConfig(backend="openai", model="gpt", api_key_env="MY_KEY"))


def test_bad_option_is_named() -> None:
    with pytest.raises(ConfigError, match=r"openai backend options: structured_outputs: "
                                          r".*\(got 'xml'\)"):
        backend("http://127.0.0.1:1/v1", options={"structured_outputs": "xml"})


async def test_env_fallbacks_and_key(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PONDER_OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("PONDER_OPENAI_MODEL", "from-env")
    monkeypatch.setenv("MY_KEY", "sk-test")
    b = OpenAIBackend(ModelConfig(backend="openai", api_key_env="MY_KEY"))
    await b.complete(ask())
    await b.aclose()
    _, headers, body = server.requests[0]
    assert body["model"] == "from-env"
    assert headers["authorization"] == "Bearer sk-test"


# -- request shape ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("json_schema", {"type": "json_schema", "json_schema": {"name": "output",
                                                                "schema": PERSON}}),
        ("json_object", {"type": "json_object", "schema": PERSON}),
        ("none", None),
    ],
)
async def test_structured_outputs(server: FakeServer, mode: str, expected: Any) -> None:
    b = backend(server.url, options={"structured_outputs": mode})
    await b.complete(ask(json_schema=PERSON))
    await b.aclose()
    assert server.requests[0][2].get("response_format") == expected


async def test_request_fields_and_response(server: FakeServer) -> None:
    b = backend(server.url, options={"server": "vllm"})
    response = await b.complete(ask(max_tokens=7, temperature=0.5, stop=["\n"], seed=3, n=2,
                                    request_id="r/s/1", priority=12.0))
    await b.aclose()
    path, _, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert (body["max_tokens"], body["temperature"], body["stop"], body["seed"], body["n"]) == (
        7, 0.5, ["\n"], 3, 2)
    assert (body["priority"], body["request_id"]) == (-12_000, "r/s/1")
    assert response.texts == ["hello", "hello"]
    assert (response.prompt_tokens, response.completion_tokens) == (11, 3)
    assert response.model == "fake-model"


async def test_top_p_is_sent_only_when_set(server: FakeServer) -> None:
    """Nucleus sampling reaches the server, streamed or not; a request without it leaves
    the server's default (no `top_p` field)."""
    b = backend(server.url)
    await b.complete(ask(top_p=0.9))
    async for _ in b.stream(ask(top_p=0.5)):
        pass
    await b.complete(ask())
    await b.aclose()
    assert [body.get("top_p", "unset") for _, _, body in server.requests] == [0.9, 0.5, "unset"]


async def test_extra_body_fields_are_sent(server: FakeServer) -> None:
    """A server's own sampling settings (llama.cpp's repeat_penalty, top_k) reach it."""
    b = backend(server.url, options={"extra_body": {"repeat_penalty": 1.0, "top_k": 1}})
    await b.complete(ask(max_tokens=7))
    async for _ in b.stream(ask(max_tokens=7)):
        pass
    await b.aclose()
    for _, _, body in server.requests:
        assert (body["repeat_penalty"], body["top_k"], body["max_tokens"]) == (1.0, 1, 7)


async def test_extra_body_with_vllm_keeps_priority_and_request_id(server: FakeServer) -> None:
    b = backend(server.url, options={"server": "vllm",
                                     "extra_body": {"repetition_penalty": 1.05}})
    await b.complete(ask(request_id="r/s/1", priority=2.0))
    await b.aclose()
    body = server.requests[0][2]
    assert (body["repetition_penalty"], body["priority"], body["request_id"]) == (
        1.05, -2_000, "r/s/1")


@pytest.mark.parametrize(("options", "words"), [
    ({"extra_body": {"max_tokens": 5}},
     "extra_body: Ponder sends 'max_tokens' (set from the step's `max_tokens`); "
     "leave it out of extra_body"),
    ({"extra_body": {"top_k": 1, "stream": False, "messages": []}},
     "Ponder sends 'stream' (set from Ponder, which streams when a step needs it), "
     "'messages' (set from the step's prompt)"),
    ({"server": "vllm", "extra_body": {"priority": 1}},
     "with server: vllm, Ponder sends 'priority' (set from the step's critical-path "
     "priority (`send_priority: false` sends none))"),
    ({"extra_body": {"top_p": 0.9}},
     "extra_body: Ponder sends 'top_p' (set from the step's `top_p`); "
     "leave it out of extra_body"),
    ({"extra_body": {"top_k": {1, 2}}}, "extra_body.top_k"),
    ({"extra_body": ["top_k", 1]}, "extra_body: "),
])
def test_extra_body_refuses_what_ponder_sends(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        backend("http://127.0.0.1:9/v1", options=options)
    assert words in str(info.value)
    assert str(info.value).startswith("openai backend options: ")


def test_a_generic_server_may_take_priority_in_extra_body() -> None:
    """Only `server: vllm` writes priority and request_id itself."""
    b = backend("http://127.0.0.1:9/v1", options={"extra_body": {"priority": 1}})
    assert b.options.extra_body == {"priority": 1}


async def test_priorities_under_a_second_apart_keep_their_order(server: FakeServer) -> None:
    b = backend(server.url, options={"server": "vllm"})
    for priority in (0.3, 0.6):
        await b.complete(ask(priority=priority))
    await b.aclose()
    sent = [body["priority"] for _, _, body in server.requests]
    assert sent == [-300, -600]  # vLLM serves lower first: 0.6 s of critical path goes first


# -- errors -----------------------------------------------------------------------


async def test_unreachable_server_names_the_url(unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/v1"
    b = backend(url)
    with pytest.raises(BackendUnavailable, match=f"cannot reach {url}") as info:
        await b.complete(ask())
    await b.aclose()
    assert is_retryable(info.value)
    assert b.stats.failed == 1


async def test_http_statuses(server: FakeServer) -> None:
    error = {"error": {"message": "slow down", "type": "x"}}
    server.script.extend([("json", 429, error), ("json", 500, error), ("json", 400, error)])
    b = backend(server.url)
    statuses = []
    for _ in range(3):
        with pytest.raises(BackendHTTPError) as info:
            await b.complete(ask())
        assert server.url in str(info.value)
        statuses.append((info.value.status, is_retryable(info.value)))
    await b.aclose()
    assert statuses == [(429, True), (500, True), (400, False)]


async def test_timeout(server: FakeServer) -> None:
    server.script.append(("sleep", 1.0))
    b = backend(server.url, request_timeout_s=0.2)
    with anyio.fail_after(0.9):
        with pytest.raises(StepTimeout, match="timed out") as info:
            await b.complete(ask())
    await b.aclose()
    assert is_retryable(info.value)


async def test_errors_while_streaming_are_mapped(server: FakeServer) -> None:
    server.script.append(("json", 503, {"error": {"message": "busy"}}))
    b = backend(server.url)
    with pytest.raises(BackendHTTPError) as info:
        async for _ in b.stream(ask()):
            pass
    await b.aclose()
    assert info.value.status == 503


# -- streaming and cancellation ------------------------------------------------


async def test_stream(server: FakeServer) -> None:
    server.script.append(("stream", 4, 0.01))
    b = backend(server.url)
    pieces: list[str] = []
    final: LLMResponse | None = None
    async for chunk in b.stream(ask()):
        if chunk.final is not None:
            final = chunk.final
        else:
            pieces.append(chunk.text)
    await b.aclose()
    assert pieces == ["t0 ", "t1 ", "t2 ", "t3 "]
    assert final is not None
    assert final.text == "t0 t1 t2 t3 "
    assert (final.prompt_tokens, final.completion_tokens, final.finish_reason) == (5, 4, "stop")
    assert final.ttft_s is not None and final.ttft_s <= final.latency_s
    assert server.requests[0][2]["stream_options"] == {"include_usage": True}


async def test_a_server_refusing_stream_options_is_streamed_without_them(
        server: FakeServer) -> None:
    refusal = {"error": {"message": "Unrecognized request argument supplied: stream_options",
                         "type": "invalid_request_error"}}
    server.script.extend([("json", 400, refusal), ("stream", 3, 0.0), ("stream", 2, 0.0)])
    b = backend(server.url)
    for expected in ("t0 t1 t2 ", "t0 t1 "):
        finals = [c.final async for c in b.stream(ask()) if c.final is not None]
        assert finals[0].text == expected
        assert finals[0].completion_tokens == len(expected.split())  # counted from chunks
    await b.aclose()
    assert ["stream_options" in body for _, _, body in server.requests] == [True, False, False]
    assert (b.stats.requests, b.stats.completed, b.stats.failed) == (2, 2, 0)


async def test_other_refusals_of_a_stream_are_errors(server: FakeServer) -> None:
    server.script.append(("json", 400, {"error": {"message": "max_tokens is too large"}}))
    b = backend(server.url)
    with pytest.raises(BackendHTTPError, match=r"HTTP 400: .*max_tokens is too large"):
        async for _ in b.stream(ask()):
            pass
    await b.aclose()
    assert len(server.requests) == 1 and b.stats.failed == 1


async def test_cancelling_a_stream_closes_the_connection(server: FakeServer) -> None:
    """Seen from the server. (A cancellation that lands in a read makes httpcore drop the
    connection by itself; the next test covers a stream closed between reads.)"""
    server.script.append(("stream", 400, 0.02))  # 8 s if read to the end
    b = backend(server.url)
    received = 0
    with anyio.move_on_after(5) as scope:
        async for _ in b.stream(ask()):
            received += 1
            if received == 3:
                scope.cancel()
    assert scope.cancelled_caught
    # the server notices while the client (and its connection pool) is still open: the
    # stream's own response was closed, and the server stops generating
    assert await anyio.to_thread.run_sync(server.disconnected.wait, 3.0)
    stopped_at = server.chunks_sent
    await anyio.sleep(0.2)
    assert server.chunks_sent == stopped_at < 400
    assert b.stats.cancelled == 1
    await b.aclose()


async def test_closing_a_stream_early_closes_the_connection(server: FakeServer) -> None:
    """What a first-finish loser's executor does: stop reading, close the stream (no
    cancellation arrives in the middle of a read, which would drop the connection
    anyway)."""
    server.script.append(("stream", 400, 0.02))
    b = backend(server.url)
    chunks = b.stream(ask())
    received = 0
    async for _ in chunks:
        received += 1
        if received == 3:
            break
    await chunks.aclose()  # type: ignore[attr-defined]
    assert await anyio.to_thread.run_sync(server.disconnected.wait, 3.0)
    stopped_at = server.chunks_sent
    await anyio.sleep(0.2)
    assert server.chunks_sent == stopped_at < 400
    assert b.stats.cancelled == 1
    await b.aclose()


async def test_a_stream_left_open_is_not_noticed_by_the_server(server: FakeServer) -> None:
    """The control of the tests above: a client that stops reading without closing the
    stream leaves the server generating, so they see the backend's close."""
    server.script.append(("stream", 400, 0.02))
    b = backend(server.url)
    chunks = await b._client.chat.completions.create(model="m", messages=ask().messages,
                                                     stream=True)
    iterator = aiter(chunks)
    for _ in range(3):
        await anext(iterator)
    await anyio.sleep(0.5)  # abandoned, not closed
    assert not server.disconnected.is_set()
    assert server.chunks_sent > 10
    await chunks.close()
    assert await anyio.to_thread.run_sync(server.disconnected.wait, 3.0)
    await b.aclose()


async def test_a_cancelled_stream_counts_what_was_received(server: FakeServer) -> None:
    server.script.append(("stream", 400, 0.02))
    b = backend(server.url)
    counted = Usage()
    seen: list[tuple[int, int]] = []
    with anyio.move_on_after(5) as scope:
        async for _ in b.stream(ask("x" * 20, usage=counted)):
            seen.append((counted.prompt_tokens, counted.completion_tokens))
            if len(seen) == 3:
                scope.cancel()
    await b.aclose()
    # the prompt's estimate (20 characters: 5 tokens) and one token per content chunk
    assert seen == [(5, 1), (5, 2), (5, 3)]
    assert (counted.prompt_tokens, counted.completion_tokens) == (5, 3)


async def test_n_samples_with_a_usage_counter_are_streamed_and_counted(
        server: FakeServer) -> None:
    server.script.append(("stream", 4, 0.0))
    b = backend(server.url)
    counted = Usage()
    response = await b.complete(ask("x" * 20, n=3, usage=counted))
    await b.aclose()
    assert server.requests[0][2]["stream"] is True
    assert response.texts == ["t0 t1 t2 t3 "] * 3
    assert (response.prompt_tokens, response.completion_tokens) == (5, 12)
    assert (counted.prompt_tokens, counted.completion_tokens) == (5, 12)  # every sample's


async def test_a_cancelled_completion_of_n_samples_counts_every_sample(server: FakeServer
                                                                       ) -> None:
    server.script.append(("stream", 400, 0.02))
    b = backend(server.url)
    counted = Usage()
    with anyio.move_on_after(0.5) as scope:
        await b.complete(ask("x" * 20, n=3, usage=counted))
    assert scope.cancelled_caught
    await b.aclose()
    assert counted.prompt_tokens == 5
    assert counted.completion_tokens >= 3 * 5  # about 25 chunks of each of the 3 samples
    assert b.stats.cancelled == 1


async def test_cancelling_a_completion(server: FakeServer) -> None:
    server.script.append(("sleep", 2.0))
    b = backend(server.url)
    start = time.monotonic()
    with anyio.move_on_after(0.2):
        await b.complete(ask())
    assert time.monotonic() - start < 1.0
    await b.aclose()
    assert b.stats.cancelled == 1


# -- against llama.cpp's server ------------------------------------------------------


def llama(url: str) -> OpenAIBackend:
    return OpenAIBackend(ModelConfig(backend="openai", model="smollm2", base_url=url,
                                     options={"structured_outputs": "json_object"}))


@pytest.mark.llama_server
async def test_llama_server_completion(llama_server_url: str) -> None:
    b = llama(llama_server_url)
    response = await b.complete(ask("Say hello.", max_tokens=8, temperature=0, seed=1))
    await b.aclose()
    assert response.text.strip()
    assert response.prompt_tokens > 0
    assert 0 < response.completion_tokens <= 8


@pytest.mark.llama_server
async def test_llama_server_json_schema(llama_server_url: str) -> None:
    b = llama(llama_server_url)
    response = await b.complete(ask("Describe a person as JSON.", max_tokens=64, json_schema=PERSON,
                                    temperature=0))
    await b.aclose()
    Draft202012Validator(PERSON).validate(json.loads(response.text))


@pytest.mark.llama_server
async def test_llama_server_cannot_write_strings_into_an_integer_list(
        llama_server_url: str) -> None:
    """llama.cpp's converter drops `items` of a type list; the backend sends the
    equivalent schema it renders exactly (unconstrained, the model copies the strings)."""
    schema = {"type": "object", "properties": {"parents": {
        "type": ["array", "null"], "items": {"type": "integer", "minimum": 1, "maximum": 3}}},
        "required": ["parents"], "additionalProperties": False}
    b = llama(llama_server_url)
    response = await b.complete(ask('Copy this JSON exactly: {"parents": ["T1", "T2"]}',
                                    max_tokens=30, json_schema=schema, temperature=0))
    await b.aclose()
    Draft202012Validator(schema).validate(json.loads(response.text))


async def test_json_object_mode_sends_the_schema_in_forms_llama_cpp_renders_exactly(
        server: FakeServer) -> None:
    nullable = {"type": ["array", "null"], "items": {"type": "integer"}}
    b = backend(server.url, options={"structured_outputs": "json_object"})
    await b.complete(ask(json_schema=nullable))
    await b.aclose()
    sent = server.requests[0][2]["response_format"]["schema"]
    assert sent == {"anyOf": [{"type": "array", "items": {"type": "integer"}},
                              {"type": "null", "items": {"type": "integer"}}]}


@pytest.mark.llama_server
async def test_llama_server_stream(llama_server_url: str) -> None:
    b = llama(llama_server_url)
    pieces: list[str] = []
    final: LLMResponse | None = None
    async for chunk in b.stream(ask("Count from one to five.", max_tokens=16, temperature=0)):
        if chunk.final is not None:
            final = chunk.final
        else:
            pieces.append(chunk.text)
    await b.aclose()
    assert final is not None
    assert pieces and "".join(pieces) == final.text
    assert final.completion_tokens > 0


@pytest.mark.llama_server
async def test_llama_server_through_the_executor(llama_server_url: str, make_context: Any) -> None:
    b = llama(llama_server_url)
    config = b.config
    step = LLMStep(id="person", prompt="p", output_schema=PERSON, max_tokens=64)
    task = Task(run_id="r", step_id="person", kind="llm", step=step,
                inputs={"prompt": "Give me a person as JSON with a name and an age."})
    result = await LLMExecutor().execute(task, make_context({"default": b}, {"default": config}))
    await b.aclose()
    Draft202012Validator(PERSON).validate(result.output)
    assert result.meta["backend"] == "openai"
    assert result.usage.total > 0
