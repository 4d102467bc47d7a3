"""What a run is refused for before anything is recorded: its hooks, its backend override,
its inputs. One wording for every way a run starts: :meth:`Workflow.run
<orchestrator.sdk.Workflow.run>` and ``ponder run`` (a new run), :func:`durable.resume
<orchestrator.runtime.durable.resume>` and :func:`durable.replay
<orchestrator.runtime.durable.replay>` (a recorded one). They live in the runtime, below
the SDK, so that the runtime needs nothing of the layer above it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.errors import ConfigError, SpecError, shown
from orchestrator.runtime.contracts import Hook
from orchestrator.runtime.engine import validate_inputs
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import STEP_KINDS, WorkflowSpec

#: a listener of a run's events: an async function of a batch of events (a
#: :class:`~orchestrator.runtime.contracts.Hook`), or a plain function
AnyHook = Hook | Callable[[Sequence[Any]], object]


def as_hook(hook: AnyHook) -> Hook:
    """A hook the scheduler awaits: an async one as it is, a plain function wrapped (what
    :meth:`Workflow.run <orchestrator.sdk.Workflow.run>` and ``durable.resume`` /
    ``durable.replay`` do with theirs).

    :raises ConfigError: for a value that is not callable.
    """
    if not callable(hook):
        raise ConfigError(f"hooks: a hook must be a function of a batch of events (async or "
                          f"not), not {type(hook).__name__} {shown(hook)}")
    call = getattr(hook, "__call__", None)  # noqa: B004  (an object's async __call__)
    if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call):
        return hook  # type: ignore[return-value]

    async def plain(events: Sequence[Any], /) -> None:
        result = hook(events)
        if inspect.isawaitable(result):  # a plain function that returns a coroutine
            await result

    return plain


def backend_problem(backend: object, registry: Registry) -> str | None:
    """What is wrong with the backend a run is asked to put every model on (``ponder run
    --backend``, ``Workflow.run(backend=...)``): the words after the option's name, or None
    when it is installed (or not given)."""
    if backend is None:
        return None
    names = registry.backend_names()
    if isinstance(backend, str) and backend in names:
        return None
    return f"unknown LLM backend; installed: {', '.join(sorted(names))}"


def check_backend(backend: object, registry: Registry) -> None:
    """:raises ConfigError: ``backend='simulatd': unknown LLM backend; installed: ...``, as
    ``ponder run --backend`` words it (:func:`backend_problem`)."""
    problem = backend_problem(backend, registry)
    if problem is not None:
        raise ConfigError(f"backend={shown(backend)}: {problem}")


def check_inputs(spec: WorkflowSpec, inputs: dict[str, Any]) -> dict[str, Any]:
    """Check inputs as a run of the workflow ``spec`` takes them.

    A workflow that declares no inputs takes none: its steps cannot read one. (A
    sub-workflow's run, nested in its parent's, takes what the parent passes.)

    :returns: the inputs the run gets: defaults filled in, text given for an input of
        another type read as JSON.
    :raises SpecError: naming every unknown, missing or malformed input, or the value
        given for ``inputs`` when it is not a dict.
    """
    if not isinstance(inputs, Mapping):
        raise SpecError(f"inputs must be a dict of input names to values, not "
                        f"{type(inputs).__name__} {shown(inputs)}")
    if inputs and not spec.inputs:
        names = ", ".join(shown(k) for k in inputs)
        raise SpecError(f"unknown input{'s' if len(inputs) > 1 else ''} {names} (the "
                        "workflow declares no inputs)")
    return validate_inputs(spec, inputs)


def tool_executor_problem(name: object, registry: Registry) -> str | None:
    """What is wrong with the executor a run is asked to run its tool steps on (``ponder
    run --tool-executor``, a resume's or a fork's, recorded or given): the words after
    the value's name (``no such executor; installed for tool steps: ...``), or None when
    it is an installed executor of tool steps that loads (it is loaded onto
    ``registry``; one the registry holds already is not looked up again). The one
    wording of both the SDK's check (:func:`check_tool_executor`) and the CLI's."""
    from importlib.metadata import entry_points

    others = set(STEP_KINDS) - {"tool"}
    if isinstance(name, str) and name not in others and name in registry.executors:
        return None  # loaded already (``ponder run`` checked it before the run does)
    names = ({ep.name for ep in entry_points(group="ponder.executors")}
             | set(registry.executors)) - others
    installed = f"installed for tool steps: {', '.join(sorted(names))}"
    if name in others:
        return f"that executor runs {name} steps, not tool steps; {installed}"
    if not isinstance(name, str) or name not in names:
        return f"no such executor; {installed}"
    try:
        registry.executor(name)
    except Exception as exc:  # an installed plugin that does not load (a missing extra)
        return f"it does not load: {type(exc).__name__}: {exc}"
    return None


def check_tool_executor(name: object, registry: Registry, what: str = "tool_executor") -> None:
    """Check the executor a run's tool steps are to run on, and load it, before anything
    is recorded.

    :param what: how the value is named in the message (``tool_executor=``, or where it
        was recorded).
    :raises ConfigError: ``tool_executor='nope': no such executor; installed for tool
        steps: ...`` (:func:`tool_executor_problem`), or why it does not load.
    """
    problem = tool_executor_problem(name, registry)
    if problem is not None:
        raise ConfigError(f"{what}={shown(name)}: {problem}")
