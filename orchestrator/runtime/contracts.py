"""The small contracts that executors, LLM backends and hooks implement.

`planners/` and `executors/` import these; `orchestrator/` never imports them back
(it finds implementations through :mod:`orchestrator.runtime.registry`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from orchestrator.spec.models import ModelConfig

if TYPE_CHECKING:
    from orchestrator.runtime.events import Event
    from orchestrator.runtime.registry import Registry


@dataclass(slots=True)
class Usage:
    """Tokens a call consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens,
                     self.completion_tokens + other.completion_tokens)

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        return self

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Task:
    """One attempt of one step, with every reference already resolved.

    :param inputs: for ``llm``: ``prompt`` and ``system`` (rendered); for ``tool``:
        ``args``; for ``workflow``: ``inputs``. Other kinds define their own keys.
    """

    run_id: str
    step_id: str
    kind: str
    step: Any
    inputs: dict[str, Any]
    attempt: int = 1
    priority: float = 0.0
    model: ModelConfig | None = None


def approx_tokens(text: str) -> int:
    """A deterministic token estimate (one token per four characters, rounded up), for
    engines and callers that have no tokenizer's count."""
    return -(-len(text) // 4)


def approx_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """:func:`approx_tokens` of every message's content, summed."""
    return sum(approx_tokens(m.get("content") or "") for m in messages)


@dataclass(slots=True)
class Result:
    """What an executor returns for a successful attempt.

    :param output: the step's output (JSON-compatible).
    :param raw: the raw text, for LLM steps.
    :param meta: anything worth recording (model, parameters, time to first token...).
    """

    output: Any
    usage: Usage = field(default_factory=Usage)
    raw: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LLMRequest:
    """A chat completion request, backend-neutral."""

    messages: list[dict[str, str]]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    seed: int | None = None
    n: int = 1
    request_id: str = ""
    #: larger = more urgent (the step's remaining critical path, or a policy's score)
    priority: float = 0.0
    #: the program (run) and step the call belongs to, for program-aware scheduling
    run_id: str = ""
    step_id: str = ""
    #: calls sharing this key share a long prompt prefix (keep them on one engine)
    prefix_key: str | None = None
    #: when set, a backend that counts its work adds the tokens of this request to it as
    #: it goes (the partial work of a cancelled request included), so a caller that is
    #: cancelled or fails mid-way knows what was spent; a completed call's response
    #: holds the authoritative counts
    usage: Usage | None = None
    #: nucleus sampling: sample only from the most likely tokens whose probabilities add
    #: up to this (0 < top_p <= 1); ``None``: the backend's default, nothing sent (last,
    #: so that a request built with positional arguments keeps its meaning)
    top_p: float | None = None


@dataclass(slots=True)
class LLMResponse:
    """A completed LLM call. ``texts`` holds every sample when ``n > 1``."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    ttft_s: float | None = None
    finish_reason: str | None = None
    model: str = ""
    texts: list[str] = field(default_factory=list)
    #: what the engine wants recorded (pool policy, engine, queue time...)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LLMChunk:
    """One piece of a streamed completion; the last one carries ``final``."""

    text: str
    final: LLMResponse | None = None


@runtime_checkable
class LLMBackend(Protocol):
    """An LLM engine. Cancelling the awaiting task must stop the work at the engine.

    A backend class may name the pydantic model of its ``ModelConfig.options`` as a class
    attribute ``options_model``: ``ponder validate`` then checks a workflow's options for
    it, each problem at its line. A classmethod ``option_problems(options)`` returning
    ``(path, message)`` pairs, when it has one, is asked instead (the ``pool`` backend's
    checks its members too; ``orchestrator.spec.options.option_problems`` builds pairs from
    a pydantic model). Without either, any options pass validation.

    A classmethod ``config_problems(config, env)`` says what a model's config lacks for
    the backend to serve it in this environment, where the environment does not give it
    either. It gets the ``ModelConfig`` as the run will use it (``--backend`` applied) and
    the environment variables (a mapping; read them from it, not from ``os.environ``), and
    returns a list of ``orchestrator.runtime.registry.ConfigProblem`` (what is missing,
    how the environment gives it, which config field gives it instead), empty when
    nothing is. Every run that starts (``Workflow.run``, a resume, a fork) asks it through
    ``Registry.backend_config_problems`` for each model its steps and sub-workflows use,
    before any step runs, and refuses the run with every problem at once. It must not do
    I/O. Without it, nothing is checked up front (the ``openai`` backend has one: no model
    name; no server and no key; the ``pool`` backend asks its members' backends).

    A classmethod ``field_problems(config)`` says what is wrong with a field's value
    beyond its type: ``(path, message, hint)`` triples, ``path`` within the model's
    mapping (``("base_url",)``, ``("options", "model_path")``), which ``ponder validate`` reports at the
    field's line and every run that starts refuses before anything is recorded (the
    ``openai`` backend: a ``base_url`` that is no http(s) URL; ``local``: a
    ``model_path`` that is not a file). It may look at files, nothing more.

    A backend that builds or checks other backends by name (the ``pool`` backend: its
    members; ``ray-engine``: the engine in its actor) has a classmethod
    ``with_registry(registry)`` returning a factory (typically a subclass) that finds
    them in ``registry``. ``Registry.backend_factory`` calls it once per registry
    (``Registry.bound_factory``) before it serves, checks or builds the backend, so that
    a backend registered on a workflow only (``Workflow.register_backend``) is found like
    an installed one; the bound factory's ``option_problems`` and ``config_problems``
    must look there too. Without the hook the factory is served as it is.
    """

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Run one request to completion."""
        ...

    def stream(self, request: LLMRequest) -> AsyncIterator[LLMChunk]:
        """Run one request, yielding text as it is produced; the last chunk is final."""
        ...

    async def aclose(self) -> None:
        """Release the engine."""
        ...


BackendFactory = Callable[[ModelConfig], LLMBackend]


class ExecContext(Protocol):
    """What an executor may use from the running scheduler."""

    @property
    def run_id(self) -> str: ...

    @property
    def base_dir(self) -> Path:
        """Directory of the workflow file (for relative paths)."""
        ...

    @property
    def registry(self) -> Registry: ...

    def backend(self, model: str) -> LLMBackend:
        """The LLM backend serving a model alias of the workflow.

        :raises ConfigError: for an unknown alias or an unavailable backend.
        """
        ...

    def model_config(self, model: str) -> ModelConfig: ...

    async def emit(self, events: Sequence[Event]) -> None:
        """Deliver events (e.g. of a nested run) to the run's hooks."""
        ...

    @property
    def hooks(self) -> Sequence[Hook]: ...

    @property
    def depth(self) -> int:
        """Nesting depth of this run (0 for a top-level run)."""
        ...

    def record(self, cls: type[Any], **fields: Any) -> None:
        """Record an event of this run (next sequence number, next batch to the hooks)."""
        ...

    async def add_steps(self, parent_step_id: str, steps: Sequence[Any], *, reason: str,
                        locals_: dict[str, dict[str, Any]] | None = None,
                        cancellable: bool = False, handled: bool = False) -> list[str]:
        """Add steps to the live graph under a parent step; they start when ready.

        ``cancellable``: :meth:`cancel_steps` may stop them at their executor.
        ``handled``: the caller answers for their failure or cancellation (a join's
        policy, a joiner), so it does not fail the run by itself.
        """
        ...

    async def wait_steps(self, step_ids: Sequence[str]) -> dict[str, Any]:
        """Wait for steps to resolve; StepOutcome (status, output, error) by id."""
        ...

    def cancel_steps(self, step_ids: Sequence[str]) -> None:
        """Cancel running `cancellable` steps at their executor, and waiting ones."""
        ...


@runtime_checkable
class Executor(Protocol):
    """Runs one kind of step.

    An executor of ``tool`` steps that calls the registry's tools with arguments
    validated by their :class:`~orchestrator.runtime.registry.ToolSpec` says so with a
    class attribute ``registry_tool_args = True``: validation then checks tool steps'
    ``args`` against those tools before the run. Any other ``tool`` executor takes
    arguments of its own, which are not checked.
    """

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        """Run one attempt. Must honour cancellation; raise a StepError subclass on failure."""
        ...

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        """A rough duration estimate (seconds) used for critical-path priority."""
        ...


class Hook(Protocol):
    """A listener of scheduler events. Awaited before the scheduler acts on them."""

    async def __call__(self, events: Sequence[Any], /) -> None:
        """Receive a batch of events (typed events of :mod:`orchestrator.runtime.events`)."""
        ...

