"""What a run is refused for before anything is recorded: its hooks, its backend override,
its inputs, what its models' configs lack (:func:`check_model_configs`). One wording for
every way a run starts: :meth:`Workflow.run <orchestrator.sdk.Workflow.run>` and ``ponder
run`` (a new run), :func:`durable.resume <orchestrator.runtime.durable.resume>` and
:func:`durable.replay <orchestrator.runtime.durable.replay>` (a recorded one). They live in the runtime, below
the SDK, so that the runtime needs nothing of the layer above it.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, PonderError, SpecError, shown
from orchestrator.graph.subworkflows import inherit_models, workflow_calls
from orchestrator.graph.validate import field_problems, run_model
from orchestrator.runtime.contracts import Hook
from orchestrator.runtime.engine import validate_inputs
from orchestrator.runtime.registry import ConfigProblem, Registry
from orchestrator.spec.loader import find_workflow
from orchestrator.spec.models import STEP_KINDS, ModelConfig, WorkflowSpec

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


def as_hooks(hooks: Iterable[AnyHook] | None) -> list[Hook]:
    """A run's hooks as given (a list, or another iterable, of them; or ``None``), each
    :func:`as_hook`.

    :raises ConfigError: for one hook given alone, or a value that holds no hooks (a
        string, a dict: its keys were taken for hooks), telling to pass a list; for a
        hook that is not callable.
    """
    if hooks is None:
        return []
    if callable(hooks):
        name = getattr(hooks, "__name__", None) or type(hooks).__name__ + "(...)"
        raise ConfigError(f"hooks: pass a list of hooks, such as hooks=[{name}], not one "
                          f"hook alone ({shown(hooks)})")
    if isinstance(hooks, str | bytes | Mapping) or not isinstance(hooks, Iterable):
        raise ConfigError(f"hooks: must be a list of functions of a batch of events, not "
                          f"{type(hooks).__name__} {shown(hooks)}")
    return [as_hook(hook) for hook in hooks]


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


def aliases_used(steps: Iterable[Any], registry: Registry | None = None) -> set[str]:
    """The model aliases that steps use (``default`` for a step that names none): an
    LLM step's, a map's LLM body's, spawn's or sample's ``model``, a join scorer's
    ``llm``; a plan's ``model`` and ``joiner_model`` where its planner calls them (its
    ``models_used``: none for ``static``; both for a planner that does not say) and the
    models of the steps it is known to add (a ``static`` plan's ``options.steps``).

    :param registry: where the planners are found (default: those installed).
    """
    registry = registry if registry is not None else Registry.default()
    used: set[str] = set()
    for step in steps:
        kind = getattr(step, "kind", None)
        if kind in ("llm", "spawn", "sample"):
            used.add(step.model)
        if kind == "map" and step.step.kind == "llm":
            used.add(step.step.model)
        if kind == "join":
            used.update(s.llm for s in (step.scorer, step.check)
                        if s is not None and s.llm is not None)
        if kind == "plan":
            called = registry.planner_models_used(step)
            if called is None:  # a planner that does not say may call either
                called = {step.model} if step.joiner_model is None else {
                    step.model, step.joiner_model}
            used |= called
            options = step.options if isinstance(step.options, dict) else {}
            if steps_known := registry.planner_known_steps(step.planner, options):
                used |= aliases_used(steps_known, registry)
                continue
            known = options.get("steps")  # a planner that does not say: as they read
            for inner in known if isinstance(known, list) else ():
                if isinstance(inner, dict) and inner.get("kind") in ("llm", "plan", "spawn",
                                                                     "sample"):
                    model = inner.get("model", "default")
                    used.add(model if isinstance(model, str) else "default")
    return used


@dataclass(frozen=True, slots=True)
class RunWorkflow:
    """A workflow a run runs: its own, or a sub-workflow (:func:`run_workflows`).

    :param spec: as the run runs it: a sub-workflow without ``models:`` of its own has
        its caller's (:func:`~orchestrator.graph.subworkflows.inherit_models`).
    :param base_dir: the folder the workflows it runs are found from.
    :param file: its file as its caller names it, relative to the folder the run's
        workflow is shown in (``sub/inner.yaml``); None for the run's own workflow and
        for one registered by name.
    :param name: a registered workflow's name; None for one read from a file.
    :param models_of: whose ``models:`` its steps run on, as :meth:`shown_as` names it:
        None for the run's own workflow's.
    """

    spec: WorkflowSpec
    base_dir: Path
    file: Path | None = None
    name: str | None = None
    models_of: Path | str | None = None

    @property
    def shown_as(self) -> Path | str | None:
        """Its file as its caller names it, or its registered name (None: the run's)."""
        return self.file if self.file is not None else self.name


def run_workflows(spec: WorkflowSpec, base_dir: Path, registry: Registry, *,
                  shown_dir: Path = Path(), inheriting_only: bool = False
                  ) -> Iterator[RunWorkflow]:
    """The workflow ``spec`` (first) and the sub-workflows a run of it runs, at any depth,
    breadth first, found as the run finds them: a registered name, else a file relative
    to its caller's (one that does not load is left out, and what it runs: the
    workflow's validation, or the run, reports it). Each file, or name, comes once for
    each file whose ``models:`` its steps run on, by the first path found to it (a
    cycle of calls ends there).

    :param shown_dir: the folder the run's workflow is shown in, that :attr:`RunWorkflow.
        file` starts from.
    :param inheriting_only: leave out the sub-workflows with ``models:`` of their own,
        and what they run: those that run on the models of ``spec``.
    """
    # a workflow, the folder the files it names are shown in, and the file (or name) of
    # the workflow whose models: its steps run on: found by another path (a/../b.yaml),
    # it is the same one, and the file's models are checked once (a cycle through files
    # with models: of their own, a/one.yaml and ../b/two.yaml calling each other, ends)
    todo: deque[tuple[RunWorkflow, Path, Path | str | None]] = deque(
        [(RunWorkflow(spec, base_dir), shown_dir, None)])
    seen: set[tuple[Path | str, Path | str | None]] = set()
    while todo:
        wf, folder, owner = todo.popleft()
        yield wf
        if not any(_may_run_a_workflow(step) for step in wf.spec.steps):
            continue  # (finding the calls reads every step's templates)
        for call in workflow_calls(wf.spec, registry.planner_known_steps):
            try:
                sub, smap, sub_folder = find_workflow(call.ref, wf.base_dir,
                                                      registry.workflows)
            except PonderError:
                continue
            if sub.models and inheriting_only:
                continue
            file, name = (folder / call.ref, None) if smap is not None else (None, call.ref)
            found = smap.file if smap is not None else call.ref
            models_of, sub_owner = (wf.models_of, owner) if not sub.models else (
                file or name, found)
            if (key := (found, sub_owner)) in seen:
                continue
            seen.add(key)
            sub, _ = inherit_models(sub, wf.spec)
            todo.append((RunWorkflow(sub, sub_folder, file, name, models_of),
                         file.parent if file is not None else folder, sub_owner))


def aliases_served(spec: WorkflowSpec, base_dir: Path, registry: Registry) -> set[str]:
    """The model aliases a run of ``spec`` serves from its own ``models:``: those its
    steps use (:func:`aliases_used`) and those of the sub-workflows that run on its
    models (they declare none, :func:`~orchestrator.graph.subworkflows.inherit_models`),
    at any depth through such sub-workflows; found as the run finds them (one that does
    not load is left to the run)."""
    used: set[str] = set()
    for wf in run_workflows(spec, base_dir, registry, inheriting_only=True):
        used |= aliases_used(wf.spec.steps, registry)
    return used


def check_model_configs(spec: WorkflowSpec, base_dir: Path, backend: str | None,
                        registry: Registry, *, steps: Iterable[str] | None = None,
                        more_aliases: Iterable[str] = ()) -> None:
    """Refuse a run whose models lack what their backend needs to serve them here (the
    ``openai`` backend: an http(s) server URL; a model name; a server or a key), each
    problem once with every model that has it, or whose ``options:`` or other fields
    their backend refuses (:meth:`Registry.backend_option_problems`: a pool checks its
    members', registered backends' too; :func:`~orchestrator.graph.validate.
    field_problems`: the ``local`` backend's ``model_path`` that is not a file), each
    with its model: each LLM step of the run failed at run time with it instead.
    (``ponder run`` validates the file first, which reports these at their lines: a run
    it starts finds none left here.)

    The models checked are those the steps that will run use, as the run serves them
    (``backend`` puts every one on that backend), and those of the sub-workflows they
    run (found as the run finds them; one that does not load is left to the run).

    :param steps: the ids of the steps of ``spec`` that will run (a resume's unfinished
        steps, a fork's re-executed ones); default: all of them.
    :param more_aliases: aliases that steps added at run time use and that will run.
    :raises ConfigError: ``model 'big': no model name to send to the server: set
        $PONDER_OPENAI_MODEL=NAME ..., or give `model: NAME` in its config``; ``model
        'default': pool backend options: member 'fast': sim-engine backend options:
        kv_blocks: ...``; every problem, in one message.
    """
    if steps is not None:
        ids = set(steps)
        spec = spec.model_copy(update={"steps": [s for s in spec.steps if s.id in ids]})
    found: dict[ConfigProblem, list[tuple[str, bool]]] = {}
    refused: list[str] = []  # what a model's backend finds wrong with its `options:`
    checked: set[tuple[str | None, str]] = set()
    for wf in run_workflows(spec, base_dir, registry):
        of = None if wf.models_of is None else str(wf.models_of)
        used = aliases_used(wf.spec.steps, registry)
        if wf.shown_as is None:  # the run's own workflow
            used |= set(more_aliases)
        for alias in sorted(used):
            declared = wf.spec.models.get(alias)
            if (of, alias) in checked or (declared is None and alias != "default"
                                          and wf.spec.models):
                continue  # an unknown alias: compiling the workflow reports it
            checked.add((of, alias))
            declared = declared or wf.spec.models.get("default") or ModelConfig()
            config = run_model(declared, backend)
            label = shown(alias) + (f" of sub-workflow {of}" if of is not None else "")
            refused += [f"model {label}: {message}" for _, message in
                        registry.backend_option_problems(config.backend, config.options)]
            problems = registry.backend_config_problems(config)
            # (the openai backend's config check names its bad base_url too: say it once)
            given = {problem.problem for problem in problems}
            refused += [f"model {label}: {message} ({hint})" for _, message, hint in
                        field_problems(config, registry) if message not in given]
            for problem in problems:
                # giving the field fixes it where the run keeps the model's own backend
                found.setdefault(problem, []).append((label, config is declared))
    if found or refused:
        said = f"backend={shown(backend)}: " if backend is not None else ""
        raise ConfigError(said + "; ".join([*refused, *(
            f"{problem.problem} for model{'s' if len(models) > 1 else ''} "
            f"{', '.join(label for label, _ in models)}: {problem.fix}"
            + (f", or give `{problem.field}` in its config" if models[0][1] else "")
            for problem, models in found.items())]))


def _may_run_a_workflow(step: Any) -> bool:
    """Whether a step may run a sub-workflow: a ``workflow`` step, a map of one, a spawn,
    a plan (its known steps may)."""
    kind = getattr(step, "kind", None)
    return kind in ("workflow", "spawn", "plan") or (kind == "map"
                                                     and step.step.kind == "workflow")
