"""A sample step whose server ignores ``n`` (llama.cpp's server answers one sample per
request) is topped up request by request; a sample cut at max_tokens in any of those
requests marks the step as cut, as it does when one request brings them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from orchestrator.runtime.contracts import LLMRequest, LLMResponse

pytestmark = pytest.mark.anyio


async def test_a_cut_sample_in_any_request_is_reported(kit: Any) -> None:
    @dataclass
    class OneSampleServer(kit.FakeBackend):  # type: ignore[misc]
        """Takes ``n`` (supports_n) but answers one sample per request, as a server
        that ignores the parameter does."""

        async def complete(self, request: LLMRequest) -> LLMResponse:
            self.requests.append(request)
            reply = self._reply(request)
            return LLMResponse(reply.text, 5, len(reply.text.split()), texts=[reply.text],
                               finish_reason=reply.finish_reason)

    server = OneSampleServer(kit.by_pattern({"Q": [
        kit.Reply("answer 7 because", finish_reason="length"),
        kit.Reply("answer 7", finish_reason="stop"),
        kit.Reply("answer 7", finish_reason="stop")]}))
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": 3,
                                "max_tokens": 3}]), fake=server)
    assert r.result.ok, r.result.error
    assert [q.n for q in server.requests] == [3, 2, 1]  # topped up one by one
    meta = r.step("s[0:3]").meta  # the call that asks for the samples
    assert meta["requests"] == 3
    assert meta["finish_reason"] == "length"  # the first request's sample was cut
