"""The ``openai`` backend's stream from a server that does not stream: it ignores
``stream: true`` and answers with one JSON body, which is read as the answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from executors.llm.openai_compat import OpenAIBackend
from orchestrator.errors import BackendError
from orchestrator.runtime.contracts import LLMRequest, Usage
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import JSONHandler, LocalServer, answer, serving

pytestmark = pytest.mark.anyio


class WholeServer(LocalServer):
    """Answers every POST with ``body`` as ``application/json`` (raw bytes when given)."""

    def __init__(self, body: Any) -> None:
        super().__init__(_Handler)
        self.body = body


class _Handler(JSONHandler):
    server: WholeServer

    def do_POST(self) -> None:
        self.asked()
        body = self.server.body
        if isinstance(body, bytes):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_json(200, body)


@pytest.fixture
def servers() -> Iterator[Callable[..., WholeServer]]:
    yield from serving(WholeServer)


def backend(srv: LocalServer) -> OpenAIBackend:
    return OpenAIBackend(ModelConfig(backend="openai", model="m", base_url=srv.url))


def ask(**fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "q"}], **fields)


async def test_an_answer_sent_whole_to_a_stream_request_is_read(
        servers: Callable[..., WholeServer]) -> None:
    llm = backend(servers(body=answer("hello there", 2)))
    usage = Usage()
    chunks = [c async for c in llm.stream(ask(usage=usage))]
    assert [c.text for c in chunks] == ["hello there", ""]
    final = chunks[-1].final
    assert final is not None and final.text == "hello there"
    assert (final.prompt_tokens, final.completion_tokens) == (3, 2)
    assert final.ttft_s is None  # its first token was not seen
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 2)
    assert llm.stats.completed == 1 and llm.stats.failed == 0
    await llm.aclose()


@pytest.mark.parametrize(("body", "says"), [
    (b"{not json", "a body that is not JSON: '{not json'"),
    ({"hello": "world"}, "the answer is not a chat completion"),
])
async def test_a_whole_body_that_is_no_answer_is_a_clear_error(
        servers: Callable[..., WholeServer], body: Any, says: str) -> None:
    srv = servers(body=body)
    llm = backend(srv)
    with pytest.raises(BackendError, match=says) as caught:
        [c async for c in llm.stream(ask())]
    assert "127.0.0.1" in str(caught.value)
    assert llm.stats.failed == 1
    await llm.aclose()
