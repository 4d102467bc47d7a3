"""Fixtures of the fan-out tests: a scripted fake backend, a run helper, captured engines."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import yaml

from executors.llm.simulated import SimulatedBackend
from orchestrator import Workflow
from orchestrator.errors import BackendHTTPError
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse
from orchestrator.runtime.engine import RunResult
from orchestrator.spec.models import ModelConfig, WorkflowSpec


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Reply:
    """What the fake answers: text, seconds it takes, or a failure."""

    text: str = "ok"
    delay_s: float = 0.0
    fail: bool = False
    finish_reason: str | None = None  # "length": stopped at max_tokens


Script = Callable[[str, int], Reply]  # (prompt, call number for that prompt) -> Reply


@dataclass
class FakeBackend:
    """An LLM backend answering from a script; streams one word per chunk.

    Records every request; ``cancelled`` counts requests stopped before their end.
    """

    script: Script
    supports_n: bool = True
    default_concurrency: int = 16
    requests: list[LLMRequest] = field(default_factory=list)
    cancelled: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def _reply(self, request: LLMRequest) -> Reply:
        prompt = request.messages[-1]["content"]
        k = self.calls.get(prompt, 0)
        self.calls[prompt] = k + 1
        return self.script(prompt, k)

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        replies = [self._reply(request) for _ in range(request.n)]
        try:
            await anyio.sleep(max(r.delay_s for r in replies))
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        if any(r.fail for r in replies):
            raise BackendHTTPError("fake: scripted failure", status=400)
        texts = [r.text for r in replies]
        return LLMResponse(texts[0], 5, sum(len(t.split()) for t in texts), texts=texts,
                           finish_reason=replies[-1].finish_reason)

    async def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        self.requests.append(request)
        reply = self._reply(request)
        words = reply.text.split()
        done = False
        try:
            for w in words:
                await anyio.sleep(reply.delay_s / max(1, len(words)))
                yield LLMChunk(w + " ")
            if reply.fail:
                raise BackendHTTPError("fake: scripted failure", status=400)
            done = True
            yield LLMChunk("", final=LLMResponse(reply.text, 5, len(words), texts=[reply.text],
                                                 finish_reason=reply.finish_reason))
        finally:
            if not done:
                self.cancelled += 1

    async def aclose(self) -> None:
        pass


def by_pattern(table: dict[str, Reply | Sequence[Reply]]) -> Script:
    """A script: the first regex that matches the prompt answers (a sequence in turn)."""

    def script(prompt: str, k: int) -> Reply:
        for pattern, reply in table.items():
            if re.search(pattern, prompt):
                if isinstance(reply, Reply):
                    return reply
                return reply[min(k, len(reply) - 1)]
        return Reply("no script")

    return script


@dataclass
class Run:
    result: RunResult
    events: list[Any]

    def of_kind(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind and e.run_id == self.result.run_id]

    def step(self, step_id: str) -> Any:
        """The step_succeeded event of a step of the top run."""
        return next(e for e in self.of_kind("step_succeeded") if e.step_id == step_id)

    def failed(self, step_id: str) -> Any:
        return next(e for e in self.of_kind("step_failed") if e.step_id == step_id)

    def cancelled(self) -> list[Any]:
        return self.of_kind("step_cancelled")


def workflow(doc: dict[str, Any] | str) -> Workflow:
    if isinstance(doc, str):
        return Workflow.from_yaml_text(doc)
    return Workflow.from_spec(WorkflowSpec.model_validate(doc))


async def run(doc: dict[str, Any] | str | Workflow, inputs: dict[str, Any] | None = None, *,
              fake: FakeBackend | None = None, backend: str | None = None) -> Run:
    """Run a workflow, collecting every event (nested runs' too)."""
    wf = doc if isinstance(doc, Workflow) else workflow(doc)
    if fake is not None:
        wf.register_backend("fake", lambda cfg: fake)
        backend = "fake"
    events: list[Any] = []

    async def hook(batch: Sequence[Any]) -> None:
        events.extend(batch)

    result = await wf.run(inputs or {}, hooks=[hook], backend=backend)
    return Run(result, events)


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> list[SimulatedBackend]:
    """Every SimulatedBackend created during the test (to read ``stats``)."""
    made: list[SimulatedBackend] = []
    original = SimulatedBackend.__init__

    def init(self: SimulatedBackend, config: ModelConfig) -> None:
        original(self, config)
        made.append(self)

    monkeypatch.setattr(SimulatedBackend, "__init__", init)
    return made


def doc(steps: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    """A workflow document named ``t`` with these steps."""
    return {"name": "t", **top, "steps": steps}


def dump(d: dict[str, Any]) -> str:
    return yaml.safe_dump(d, sort_keys=False)


@dataclass(frozen=True)
class Kit:
    """The helpers above, for test modules (a conftest is not importable by name)."""

    Reply: type[Reply] = Reply
    FakeBackend: type[FakeBackend] = FakeBackend
    by_pattern: Callable[..., Script] = by_pattern
    run: Callable[..., Any] = run
    workflow: Callable[..., Workflow] = workflow
    doc: Callable[..., dict[str, Any]] = doc
    dump: Callable[[dict[str, Any]], str] = dump


@pytest.fixture
def kit() -> Kit:
    return Kit()
