"""What the pool tests' fake OpenAI-compatible servers share: a server on 127.0.0.1 that
starts on a thread of its own, the handler's JSON and server-sent-event plumbing, the
bodies of an answer and of a stream's chunk, and a pool member pointing at a server; and
the stream of a fake backend that only answers whole (CompleteOnly)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse


class LocalServer(ThreadingHTTPServer):
    """A server on 127.0.0.1 at a free port; its ``url`` is an OpenAI ``base_url``."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


S = TypeVar("S", bound=LocalServer)


def serving(make: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """For a fixture: a function that makes a server and serves it on a daemon thread;
    each one made is shut down when the fixture ends."""
    started: list[S] = []

    def start(**kwargs: Any) -> S:
        srv = make(**kwargs)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet handler that reads a JSON request and writes JSON or an event stream."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def asked(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        return body

    def send_json(self, status: int, body: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

    def hold_until_client_closes(self) -> None:
        """Hang the answer until the client closes the connection (the socket then
        reads as closed), as an engine that stopped answering does."""
        self.connection.settimeout(0.05)
        while True:
            try:
                if self.connection.recv(1) == b"":
                    raise ConnectionResetError
            except TimeoutError:
                continue


class CompleteOnly:
    """A fake backend's ``stream`` and ``aclose`` for one that only implements
    ``complete``: the answer as one chunk, then the final one."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise NotImplementedError

    async def stream(self, request: LLMRequest) -> Any:
        response = await self.complete(request)
        yield LLMChunk(response.text)
        yield LLMChunk("", final=response)

    async def aclose(self) -> None:
        pass


def answer(content: str, completion_tokens: int) -> dict[str, Any]:
    """A chat completion of ``content`` (a prompt of 3 tokens)."""
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": completion_tokens,
                      "total_tokens": 3 + completion_tokens}}


def chunk(content: str, finish: str | None) -> bytes:
    """A stream's event carrying ``content`` (and the ``finish`` reason, on the last)."""
    event = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return f"data: {json.dumps(event)}\n\n".encode()


def member(srv: LocalServer, name: str, **fields: Any) -> dict[str, Any]:
    """A pool member that is the ``openai`` backend at ``srv``."""
    return {"backend": "openai", "model": "m", "base_url": srv.url, "name": name, **fields}


class FullServer(LocalServer):
    """Answers every POST 503 "the queue is full", with ``retry_after`` as its
    Retry-After header."""

    def __init__(self, retry_after: str = "") -> None:
        super().__init__(_FullHandler)
        self.retry_after = retry_after


class _FullHandler(JSONHandler):
    server: FullServer

    def do_POST(self) -> None:
        self.asked()
        self.send_json(503, {"error": {"message": "the queue is full"}},
                       {"Retry-After": self.server.retry_after})
