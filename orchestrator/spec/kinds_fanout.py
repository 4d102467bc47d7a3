"""Fan-out steps for parallel threads of thought: `spawn`, `sample` and `join`.

Semantics follow Adaptive Parallel Reasoning (spawn/join) and the test-time scaling
operators (vote, best-of-n, first-finish, adaptive vote). Executed by `executors/`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator.spec.base import StepBase


class SpawnStep(StepBase):
    """Start one child thread per message; each child sees only what it is passed."""

    kind: Literal["spawn"] = "spawn"
    messages: Any = Field(description="A list of messages, or a reference to one.")
    context: str | None = Field(None, description="Template: context passed to every child.")
    prompt: str = Field("{{ context }}\n\n{{ message }}",
                        description="Template of a child's prompt (`message`, `context`, `index`).")
    workflow: str | None = Field(None, description="Run a sub-workflow per child instead of an LLM.")
    model: str = "default"
    max_tokens: int = Field(256, ge=1, le=1_000_000)
    temperature: float = Field(0.7, ge=0, le=2)
    max_children: int = Field(16, ge=1, le=1024)
    max_depth: int = Field(2, ge=0, le=16)
    budget_tokens: int | None = Field(None, ge=1)

    resolved_fields = ("messages",)
    template_fields = ("context",)


class SampleStep(StepBase):
    """Ask the model for `n` samples of one prompt (one request where the backend can)."""

    kind: Literal["sample"] = "sample"
    prompt: str
    system: str | None = None
    model: str = "default"
    n: int = Field(4, ge=1, le=256)
    max_tokens: int = Field(256, ge=1, le=1_000_000)
    temperature: float = Field(0.8, ge=0, le=2)
    budget_tokens: int | None = Field(None, ge=1)

    template_fields = ("prompt", "system")


class JoinStep(StepBase):
    """Reduce the children of a fan-out (`map`, `spawn` or `sample`) into one output."""

    kind: Literal["join"] = "join"
    of: str = Field(description="The id of the fan-out step whose children are joined.")
    reducer: Literal["concat", "vote", "best_of_n", "first_finish", "adaptive_vote"] = "concat"
    policy: Literal["require_all", "ignore_failures", "min_successes"] = "ignore_failures"
    min_successes: int = Field(1, ge=1)
    extract: str | None = Field(None, description="Regex whose first group is the answer.")
    normalize: list[Literal["strip", "lower", "number", "collapse_spaces"]] = Field(
        default_factory=lambda: ["strip"])
    tie_break: Literal["first", "shortest", "longest"] = "first"
    scorer: dict[str, Any] | None = Field(None, description="best_of_n: {tool: NAME} | "
                                          "{llm: MODEL, prompt: TEMPLATE} | {endpoint: URL}")
    check: dict[str, Any] | None = Field(None, description="first_finish: accept only outputs "
                                         "passing this (same forms as scorer).")
    confidence: float = Field(0.7, gt=0, le=1, description="adaptive_vote stopping share.")
    batch: int = Field(2, ge=1, le=64, description="adaptive_vote samples per round.")
    max_n: int = Field(16, ge=1, le=256, description="adaptive_vote sample cap.")
