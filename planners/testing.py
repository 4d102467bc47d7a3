"""A scripted LLM backend for planner tests: answers from a script, token by token.

    llm = ScriptedLLM([
        (r"Question: add", '1. calc("1 + 2")\\n2. join()\\n<END_OF_PLAN>'),
        (r"Actions and observations", '{"action": "finish", "answer": "3"}'),
    ], token_delay_s=0.01)
    wf.register_backend("scripted", llm.factory)

Each piece is one completion token; a request's ``usage`` (when set) is counted as the
answer streams, so the partial work of a cancelled call is known.

A rule's answer is a string, a callable ``LLMRequest -> str | Iterable[str]`` (an
iterable is streamed as is: an endless one models a planner that streams forever),
or a list of those (successive answers, the last repeating).

A request for ``n > 1`` samples streams the first and answers with all of them
(``LLMResponse.texts``): the rule's next answers, as successive calls would get them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.lowlevel import checkpoint

from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig

Script = Callable[[LLMRequest], "str | Iterable[str]"]
Answer = str | Script | Sequence["str | Script"]
_TOKEN = re.compile(r"\s*\S+|\s+")


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    answer: Answer
    hits: int = 0


@dataclass
class ScriptedLLM:
    """An ``LLMBackend`` whose answers come from rules matched on the last user message.

    :param rules: ``(regex, answer)`` pairs; the first whose regex is found wins.
    :param default: the answer when no rule matches.
    :param token_delay_s: sleep before each streamed token (word-sized pieces).
    :param max_tokens_cut: stop each answer at the request's ``max_tokens`` pieces, with
        ``finish_reason="length"``, as an engine does.
    :ivar calls: every request, in order.
    :ivar cancelled: streams closed before their end.
    """

    rules: list[tuple[str, Answer]] = field(default_factory=list)
    default: Answer = "I do not know."
    token_delay_s: float = 0.0
    max_tokens_cut: bool = False
    calls: list[LLMRequest] = field(default_factory=list)
    cancelled: int = 0
    _rules: list[_Rule] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._rules = [_Rule(re.compile(p), a) for p, a in self.rules]

    def factory(self, config: ModelConfig) -> ScriptedLLM:
        """A backend factory (``Workflow.register_backend``) returning this instance."""
        return self

    def prompts(self, pattern: str = "") -> list[str]:
        """The last user message of every call whose message matches ``pattern``."""
        return [m for m in (_last_user(c) for c in self.calls) if re.search(pattern, m)]

    async def complete(self, request: LLMRequest) -> LLMResponse:
        final: LLMResponse | None = None
        async for chunk in self.stream(request):
            final = chunk.final or final
        assert final is not None
        return final

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        self.calls.append(request)
        answer = self._answer(request)
        pieces: Iterable[str] = _TOKEN.findall(answer) if isinstance(answer, str) else answer
        text: list[str] = []
        done = False
        start = anyio.current_time()
        prompt_tokens = sum(len(m.get("content", "")) for m in request.messages) // 4
        if request.usage is not None:  # counts as it goes, as the simulated engine does
            request.usage.prompt_tokens += prompt_tokens
        try:
            for piece in pieces:
                if self.token_delay_s:
                    await anyio.sleep(self.token_delay_s)
                else:
                    await checkpoint()
                if self.max_tokens_cut and len(text) >= request.max_tokens:
                    break
                text.append(piece)
                if request.usage is not None:
                    request.usage.completion_tokens += 1
                yield LLMChunk(piece)
            full = "".join(text)
            truncated = self.max_tokens_cut and len(text) >= request.max_tokens
            # the other samples of a request for several: the rule's next answers, whole
            others = [self._sample(request) for _ in range(request.n - 1)]
            completion = len(text) + sum(len(_TOKEN.findall(o)) for o in others)
            if request.usage is not None:
                request.usage.completion_tokens += completion - len(text)
            done = True
            yield LLMChunk("", final=LLMResponse(
                text=full, prompt_tokens=prompt_tokens,
                completion_tokens=completion, latency_s=anyio.current_time() - start,
                finish_reason="length" if truncated else "stop", model="scripted",
                texts=[full, *others] if others else []))
        finally:
            if not done:
                self.cancelled += 1

    async def aclose(self) -> None:
        """Nothing to release."""

    def _sample(self, request: LLMRequest) -> str:
        """One more sample of ``request``, whole (cut at ``max_tokens`` pieces when
        ``max_tokens_cut``)."""
        answer = self._answer(request)
        pieces = _TOKEN.findall(answer) if isinstance(answer, str) else list(answer)
        if self.max_tokens_cut:
            pieces = pieces[:request.max_tokens]
        return "".join(pieces)

    def _answer(self, request: LLMRequest) -> str | Iterable[str]:
        prompt = _last_user(request)
        for rule in self._rules:
            if rule.pattern.search(prompt):
                rule.hits += 1
                return _pick(rule.answer, rule.hits, request)
        return _pick(self.default, 1, request)


def _pick(answer: Answer, hit: int, request: LLMRequest) -> str | Iterable[str]:
    if isinstance(answer, str):
        return answer
    if callable(answer):
        return answer(request)
    chosen = answer[min(hit, len(answer)) - 1]
    return chosen if isinstance(chosen, str) else chosen(request)


def _last_user(request: LLMRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""


def forever(text: str) -> Callable[[LLMRequest], Iterable[str]]:
    """An answer that streams ``text`` and then never ends (one space at a time)."""

    def pieces(request: LLMRequest) -> Iterable[str]:
        yield from _TOKEN.findall(text)
        while True:
            yield " "

    return pieces


__all__ = ["ScriptedLLM", "forever"]
