"""OpenAIBackend and a busy server's ``Retry-After`` that is not a usable date or number:
the answer is still the one-line ``BackendHTTPError`` (its status kept, the header read as
absent), never the date parser's own exception."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from executors.llm import OpenAIBackend
from orchestrator.errors import BackendHTTPError
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

pytestmark = pytest.mark.anyio


class BusyServer(ThreadingHTTPServer):
    """Answers every POST 503 with ``retry_after`` as its Retry-After header."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.retry_after = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: BusyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        payload = json.dumps({"error": {"message": "the queue is full"}}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Retry-After", self.server.retry_after)
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[BusyServer]:
    srv = BusyServer()
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("header", [
    "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",  # a year beyond C's integers
    "Mon, 01 Jan 2030 00:00:00 +9999999999999999999",  # an offset beyond them
])
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_retry_after_date_beyond_any_calendar_reads_as_absent(
        server: BusyServer, header: str, streamed: bool) -> None:
    server.retry_after = header
    b = OpenAIBackend(ModelConfig(backend="openai", model="m", base_url=server.url))
    request = LLMRequest(messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(BackendHTTPError) as info:
        if streamed:
            async for _ in b.stream(request):
                pass  # pragma: no cover
        else:
            await b.complete(request)
    await b.aclose()
    assert info.value.status == 503
    assert info.value.retry_after_s is None
    assert "the queue is full" in str(info.value)
