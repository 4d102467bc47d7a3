"""OpenAIBackend and a busy server's ``Retry-After`` that is not a usable date or number:
the answer is still the one-line ``BackendHTTPError`` (its status kept, the header read as
absent), never the date parser's own exception."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from executors.llm import OpenAIBackend
from orchestrator.errors import BackendHTTPError
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig
from tests.executors.engines.openai_servers import FullServer, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def servers() -> Iterator[Callable[..., FullServer]]:
    yield from serving(FullServer)


@pytest.mark.parametrize("header", [
    "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",  # a year beyond C's integers
    "Mon, 01 Jan 2030 00:00:00 +9999999999999999999",  # an offset beyond them
])
@pytest.mark.parametrize("streamed", [False, True])
async def test_a_retry_after_date_beyond_any_calendar_reads_as_absent(
        servers: Callable[..., FullServer], header: str, streamed: bool) -> None:
    server = servers(retry_after=header)
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
