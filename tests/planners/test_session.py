"""A plan session's LLM calls fail as an ``llm`` step's do: one mapping of a backend's
foreign exceptions (:func:`orchestrator.errors.backend_errors`), for both."""

from __future__ import annotations

import ast
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

import planners
from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    PonderError,
    StepError,
    StepTimeout,
    backend_errors,
    is_retryable,
)
from orchestrator.runtime.contracts import LLMChunk, LLMRequest, LLMResponse
from planners.base import PlanSession

pytestmark = pytest.mark.anyio
ASK = LLMRequest(messages=[{"role": "user", "content": "a question of some length"}])


@dataclass
class Failing:
    """A backend that streams one piece, then raises ``error`` (or, without one, waits)."""

    error: BaseException | None

    async def complete(self, request: LLMRequest) -> LLMResponse:
        raise AssertionError("the session streams")

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        yield LLMChunk("partial answer")
        if self.error is None:
            await anyio.sleep_forever()
        raise self.error  # type: ignore[misc]

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass
class Graph:
    """The part of the run a session uses for a call: the backend of a model alias."""

    served: Failing
    run_id: str = "run-1"

    def backend(self, model: str) -> Failing:
        return self.served


async def drain(session: PlanSession) -> list[str]:
    async with aclosing(session.stream("default", ASK)) as chunks:
        return [chunk.text async for chunk in chunks]


CASES: list[tuple[Callable[[], Exception], type[Exception], bool, str]] = [
    (lambda: TimeoutError("read timed out"), StepTimeout, True,
     "step 'p': the backend timed out: read timed out"),
    (lambda: ConnectionResetError("peer reset"), BackendUnavailable, True,
     "step 'p': the backend is unreachable: peer reset"),
    (lambda: ValueError("bad token"), BackendError, False,
     "step 'p': the backend failed: ValueError: bad token"),
    (lambda: BackendHTTPError("HTTP 503 from the server", status=503), BackendHTTPError, True,
     "HTTP 503 from the server"),
    (lambda: ConfigError("unknown model 'x'"), ConfigError, False, "unknown model 'x'"),
]


@pytest.mark.parametrize(("error", "kind", "retryable", "message"), CASES,
                         ids=["timeout", "connection", "other", "http", "ponder"])
async def test_a_backend_failure_is_mapped_as_for_an_llm_step(
        error: Callable[[], Exception], kind: type[Exception], retryable: bool,
        message: str) -> None:
    session = PlanSession(Graph(Failing(error())), "p")  # type: ignore[arg-type]
    with pytest.raises(PonderError) as raised:
        await drain(session)
    assert type(raised.value) is kind
    assert str(raised.value) == message
    assert is_retryable(raised.value) is retryable
    if isinstance(raised.value, StepError):
        assert raised.value.step_id == "p"  # filled in where the backend left it empty
    assert session.usage.completion_tokens > 0  # the failed call's tokens still count

    # the llm step's mapping is the same one
    with pytest.raises(PonderError) as direct, backend_errors("p"):
        raise error()
    assert (type(direct.value), str(direct.value)) == (kind, message)


async def test_a_step_error_keeps_the_step_it_names() -> None:
    session = PlanSession(Graph(Failing(StepTimeout("slow", step_id="other"))), "p")  # type: ignore[arg-type]
    with pytest.raises(StepTimeout) as raised:
        await drain(session)
    assert raised.value.step_id == "other"


async def test_cancelling_a_call_is_not_a_backend_error() -> None:
    session = PlanSession(Graph(Failing(None)), "p")  # type: ignore[arg-type]
    with anyio.move_on_after(0.05) as scope:
        await drain(session)
    assert scope.cancelled_caught  # cancelled, not turned into a BackendError
    assert session.usage.completion_tokens > 0


def test_the_llm_executor_uses_the_same_mapping() -> None:
    from executors.llm import _common

    assert _common.backend_errors is backend_errors


def test_planners_do_not_import_executors() -> None:
    """`planners/` uses the contracts of `orchestrator/` only (ARCHITECTURE: one
    direction), not the executors' modules."""
    root = Path(planners.__file__).parent
    offending = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            offending += [f"{path.name}:{node.lineno}: {n}" for n in names
                          if n == "executors" or n.startswith("executors.")]
    assert not offending, offending
