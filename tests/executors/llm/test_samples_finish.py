"""An answer of several samples (``n > 1``) stopped at its token limit when any sample
did: a run names such a step (its answer may be cut off), so a cut second sample must
not hide behind a first one that ended by itself."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path

import pytest

from executors.llm import LocalBackend
from executors.llm._common import samples_finish
from executors.llm.openai_compat import OpenAIBackend
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse, Usage
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import JSONHandler, LocalServer, serving

pytestmark = pytest.mark.anyio

#: each sample's text and finish reason: the first ends, the second is cut
SAMPLES = [("The answer is 6.", "stop"), ("First, 3 boxes of 6 make", "length")]


def ask(n: int, usage: Usage | None = None) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "q"}], n=n, max_tokens=8,
                      usage=usage)


def test_samples_finish() -> None:
    assert samples_finish(["stop", "length", "stop"]) == "length"
    assert samples_finish(["stop", "stop"]) == "stop"
    assert samples_finish([None]) is None
    assert samples_finish([]) is None


class ScriptedLocal(LocalBackend):
    """The local backend with each sample's decode replaced by :data:`SAMPLES`."""

    async def _sample(self, request: LLMRequest, seed: int
                      ) -> AsyncGenerator[LLMChunk, None]:
        text, finish = SAMPLES[seed % len(SAMPLES)]
        meta = {"stopped_at": "n_ctx", "n_ctx": 2048} if finish == "length" else {}
        yield LLMChunk(text)
        yield LLMChunk("", final=LLMResponse(text=text, prompt_tokens=3, completion_tokens=8,
                                             finish_reason=finish, texts=[text], meta=meta))


async def test_local_samples_cut_after_the_first_say_length(gguf_path: Path) -> None:
    backend = ScriptedLocal(ModelConfig(backend="local", options={"n_threads": 1}))
    response = await backend.complete(ask(2))
    assert response.texts == [text for text, _ in SAMPLES]
    assert response.finish_reason == "length"
    assert response.meta == {"stopped_at": "n_ctx", "n_ctx": 2048}  # the cut sample's
    one = await backend.complete(ask(1))
    assert (one.finish_reason, one.meta) == ("stop", {})


class SamplesServer(LocalServer):
    """Answers with :data:`SAMPLES` as the choices: one JSON body, or as a stream."""

    def __init__(self) -> None:
        super().__init__(_Handler)


class _Handler(JSONHandler):
    def do_POST(self) -> None:
        body = self.asked()
        choices = [{"index": i, "finish_reason": finish,
                    "message": {"role": "assistant", "content": text}}
                   for i, (text, finish) in enumerate(SAMPLES)]
        if not body.get("stream"):
            self.send_json(200, {"id": "x", "object": "chat.completion", "created": 0,
                                 "model": "m", "choices": choices,
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 16,
                                           "total_tokens": 19}})
            return
        self.start_events()
        for i, (text, finish) in enumerate(SAMPLES):
            for delta, reason in (({"content": text}, None), ({}, finish)):
                event = {"id": "x", "object": "chat.completion.chunk", "created": 0,
                         "model": "m",
                         "choices": [{"index": i, "delta": delta, "finish_reason": reason}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def servers() -> Iterator[Callable[..., SamplesServer]]:
    yield from serving(SamplesServer)


@pytest.mark.parametrize("usage", [None, Usage()], ids=["whole", "streamed"])
async def test_openai_samples_cut_after_the_first_say_length(
        servers: Callable[..., SamplesServer], usage: Usage | None) -> None:
    # a request whose caller counts usage is streamed (complete's docstring)
    srv = servers()
    backend = OpenAIBackend(ModelConfig(backend="openai", model="m", base_url=srv.url))
    response = await backend.complete(ask(2, usage))
    await backend.aclose()
    assert response.texts == [text for text, _ in SAMPLES]
    assert response.finish_reason == "length"

