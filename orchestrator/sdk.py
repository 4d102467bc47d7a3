"""The Python SDK: build, load, dump and run workflows from code.

    wf = Workflow("qa", inputs={"question": "string"})
    wf.llm("answer", prompt="Answer: {{ inputs.question }}", max_tokens=64)
    result = wf.run_sync({"question": "Why is the sky blue?"}, backend="simulated")

Fan-outs and their joins (test-time scaling, spawn/join threads)::

    wf.sample("solve", prompt="Solve: {{ inputs.question }}", n=8)
    wf.join("answer", of="solve", reducer="vote", extract=r"answer is (\\d+)")

Everything async is written once; the ``*_sync`` variants run it with ``anyio.run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

import anyio
from pydantic import BaseModel, ValidationError

from orchestrator.errors import (
    ConfigError,
    PonderError,
    Problem,
    SpecError,
    StepDefinitionError,
    ValidationFailed,
    shown,
    validation_summary,
)
from orchestrator.graph.compile import CompiledGraph
from orchestrator.graph.subworkflows import input_problems, workflow_calls
from orchestrator.runtime import events as ev
from orchestrator.runtime.contracts import Executor
from orchestrator.runtime.engine import RunResult, compile_graph, execute
from orchestrator.runtime.events import Event
from orchestrator.runtime.registry import Registry, ToolSpec
from orchestrator.runtime.run_checks import (  # the runtime's checks, also named here
    AnyHook,
    as_hooks,
    check_backend,
    check_inputs,
    check_model_configs,
    check_tool_executor,
)
from orchestrator.runtime.run_checks import as_hook as as_hook
from orchestrator.runtime.run_checks import backend_problem as backend_problem
from orchestrator.spec.kinds_fanout import JoinStep, SampleStep, Scorer, SpawnStep
from orchestrator.spec.loader import SourceMap, dump_yaml, find_workflow, load_yaml, path_text
from orchestrator.spec.models import (
    BranchCase,
    BranchStep,
    InputSpec,
    LLMStep,
    MapBody,
    MapStep,
    OutputSpec,
    Step,
    ToolStep,
    WorkflowSpec,
    WorkflowStep,
    tool_name_problem,
)
from orchestrator.store._codec import no_run_id


class Workflow:
    """A workflow: its spec plus the tools, executors and sub-workflows registered for it."""

    def __init__(
        self,
        name: str,
        *,
        description: str = "",
        inputs: dict[str, str | dict[str, Any] | InputSpec] | None = None,
        models: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if inputs is not None and not isinstance(inputs, dict):
            raise StepDefinitionError(
                f"workflow {shown(name)}: `inputs` must be a dict of input names to types "
                "(such as {'question': 'string'}), input fields or InputSpecs, not "
                f"{type(inputs).__name__} {shown(inputs)}")
        ins = {k: _input_spec(k, v) for k, v in (inputs or {}).items()}
        # only what was given is set: the record of a run keeps a default that is set
        # (see spec_to_data), and to_yaml() writes it; a value of the wrong type is left
        # to the spec, which names it (`if v` dropped a description of 0 or [] silently)
        given = {k: v for k, v in (("description", description), ("inputs", ins),
                                   ("models", models)) if v not in (None, "", {})}
        with _defining("workflow", name, "workflow"):
            self.spec = WorkflowSpec(name=name, **given)
        self.registry = Registry.default()
        self.source = SourceMap(describe=self._where)
        self.base_dir = Path(".")
        self._compiled: tuple[Any, CompiledGraph] | None = None

    # -- loading and dumping -------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: WorkflowSpec, source: SourceMap | None = None,
                  base_dir: Path | None = None) -> Workflow:
        wf = cls.__new__(cls)
        wf.spec = spec
        wf.registry = Registry.default()
        # a step added in Python to a loaded workflow has no line: named as in a built one
        wf.source = SourceMap(describe=wf._where) if source is None else \
            dataclasses.replace(source, describe=source.describe or wf._where)
        wf.base_dir = base_dir or Path(".")
        wf._compiled = None
        return wf

    @classmethod
    def from_yaml(cls, path: str | Path) -> Workflow:
        """Load a workflow file.

        :raises ValidationFailed: with every located problem.
        :raises SpecError: for a ``path`` that is neither a string nor a path.
        """
        if not isinstance(path, str | os.PathLike):
            raise SpecError(f"from_yaml: the path must be a str or a Path, not "
                            f"{type(path).__name__} {shown(path)}")
        spec, smap = load_yaml(path)
        return cls.from_spec(spec, smap, Path(path).resolve().parent)

    @classmethod
    def from_yaml_text(cls, text: str, name: str = "<string>") -> Workflow:
        """Load a workflow from YAML text; ``name`` stands for its file in messages.

        :raises ValidationFailed: with every located problem.
        :raises SpecError: for a ``text`` or ``name`` that is not a string.
        """
        if not isinstance(text, str):
            hint = ("decode it first (data.decode())" if isinstance(text, bytes | bytearray)
                    else "to load a file, use Workflow.from_yaml(path)")
            raise SpecError(f"from_yaml_text: the text must be a str of YAML, not "
                            f"{type(text).__name__} {shown(text)}: {hint}")
        if not isinstance(name, str):
            raise SpecError(f"from_yaml_text: the name must be a str, not "
                            f"{type(name).__name__} {shown(name)}")
        spec, smap = load_yaml(name, text=text)
        return cls.from_spec(spec, smap)

    def to_yaml(self) -> str:
        return dump_yaml(self.spec)

    def _where(self, path: tuple[str | int, ...]) -> str:
        """The place a problem's path leads to, as a builder's error names it (``llm step
        'a': prompt``): a workflow built in Python has no file lines to give."""
        if not path:
            return ""
        head, rest = path[0], path[1:]
        if head == "steps" and rest and isinstance(rest[0], int) \
                and 0 <= rest[0] < len(self.spec.steps):
            step = self.spec.steps[rest[0]]
            label, rest = f"{step.kind} step {shown(step.id)}", rest[1:]
        elif head in ("inputs", "outputs", "models") and rest:
            noun = {"inputs": "input", "outputs": "output", "models": "model"}[str(head)]
            label, rest = f"{noun} {shown(rest[0])}", rest[1:]
        else:
            label, rest = str(head), rest
        field_path = path_text(rest)
        return f"{label}: {field_path}" if field_path else label

    # -- building ------------------------------------------------------------------
    def add(self, step: Any) -> Workflow:
        """Append a step: a step model (LLMStep, ToolStep, MapStep, BranchStep,
        WorkflowStep...) or its fields as a dict, as in a workflow file's ``steps:``.

        :raises StepDefinitionError: for a dict that is no valid step, or a value that is
            neither.
        """
        if isinstance(step, dict):
            model = _STEP_KINDS.get(step.get("kind"))  # type: ignore[arg-type]
            if model is None:
                raise StepDefinitionError(
                    f"add: step {shown(step.get('id'))}: `kind` must be one of "
                    f"{', '.join(_STEP_KINDS)}, not {shown(step.get('kind'))}")
            with _defining(str(step["kind"]), step.get("id")):
                step = model.model_validate(step)
        elif not isinstance(step, _STEP_TYPES):
            raise StepDefinitionError(
                f"add: a step must be a step model (LLMStep, ToolStep, ...) or a dict of "
                f"its fields, not {type(step).__name__} {shown(step)}")
        self.spec.steps.append(step)
        return self

    def llm(self, id: str, prompt: str, **fields: Any) -> Workflow:
        """Add an `llm` step (fields as :class:`~orchestrator.spec.models.LLMStep`).

        Every builder raises :class:`~orchestrator.errors.StepDefinitionError` (a
        ``ValueError``) naming the step and each field of the wrong type or value."""
        with _defining("llm", id):
            return self.add(LLMStep(id=id, prompt=prompt, **fields))

    def tool(self, id: str, tool: str | Callable[..., Any], **args: Any) -> Workflow:
        """Add a tool step; a callable is registered under its name first."""
        if callable(tool):
            tool = self.register_tool(tool).name
        with _defining("tool", id):
            return self.add(ToolStep(id=id, tool=tool, args=args))

    def map(self, id: str, over: Any, step: dict[str, Any] | MapBody,
            concurrency: int | None = None, item_var: str = "item") -> Workflow:
        with _defining("map", id):
            return self.add(MapStep.model_validate({  # a dict body is validated there
                "id": id, "over": over, "step": step, "concurrency": concurrency,
                "as": item_var}))

    def branch(self, id: str, cases: Sequence[tuple[str, list[str]]],
               default: list[str] | None = None) -> Workflow:
        """Add a `branch` step: ``cases`` are ``(when, then)`` pairs, a condition and the
        step ids it enables.

        :raises StepDefinitionError: naming a case that is not such a pair.
        """
        pairs = list(cases) if isinstance(cases, list | tuple) else None
        if pairs is None:
            raise StepDefinitionError(f"branch step {shown(id)}: `cases` must be a list of "
                                      f"(when, then) pairs, got {type(cases).__name__} "
                                      f"{shown(cases)}")
        for case in pairs:
            if not isinstance(case, list | tuple) or len(case) != 2:
                raise StepDefinitionError(f"branch step {shown(id)}: a case must be a "
                                          f"(when, then) pair, got {shown(case)}")
        with _defining("branch", id):
            return self.add(BranchStep(id=id, default=default or [],
                                       cases=[BranchCase(when=w, then=t) for w, t in pairs]))

    def call(self, id: str, workflow: str | Workflow, **inputs: Any) -> Workflow:
        """Add a `workflow` step running another workflow: a path, a name given to
        :meth:`register_workflow`, or a Workflow object (registered under its name).

        :raises ConfigError: for a Workflow object whose name another one has here (see
            :meth:`register_workflow`).
        """
        if isinstance(workflow, Workflow):
            workflow = self.register_workflow(workflow)
        with _defining("workflow", id):
            return self.add(WorkflowStep(id=id, workflow=workflow, inputs=inputs))

    def register_workflow(self, workflow: Workflow, name: str | None = None, *,
                          replace: bool = False) -> str:
        """Make a Workflow object callable by name from this workflow's ``workflow``
        steps and spawns, with its tools; :meth:`call` and :meth:`spawn` do so for the
        object they are given. ``to_yaml()`` writes the name, so a workflow loaded from
        that YAML needs its sub-workflows registered again, under the same names.
        Registering the same object again does nothing.

        :param name: the name steps call it by (default: its own, ``workflow.spec.name``).
        :param replace: serve it in place of another Workflow registered under that name.
        :returns: the name.
        :raises ConfigError: for a ``workflow`` that is no Workflow, a name that is not a
            non-empty string, a name another Workflow object has here when ``replace``
            is false (the steps calling the first would silently run the second), or a
            tool of it that has the name of a built-in tool or of another function of
            this workflow (the run serves one tool per name).
        """
        if not isinstance(workflow, Workflow):
            raise ConfigError(f"register_workflow: the workflow must be a Workflow, not "
                              f"{type(workflow).__name__} {shown(workflow)}")
        key = workflow.spec.name if name is None else name
        _check_name("register_workflow", "name", key)
        taken = self.registry.workflows.get(key)
        if taken is not None and taken is not workflow and not replace:
            raise ConfigError(
                f"register_workflow: another workflow is registered as {shown(key)}: give "
                f"this one another name (wf.register_workflow(other, name='...'), then call "
                f"it by that name), or pass replace=True to run it in place of the first")
        for tool_name, spec in workflow.registry.tools.items():
            try:
                self.registry.add_tool(spec, tool_name)
            except ConfigError as exc:
                raise ConfigError(f"workflow {shown(key)}: {exc}") from None
        self.registry.workflows[key] = workflow
        return key

    def sample(self, id: str, prompt: str, n: int = 4, **fields: Any) -> Workflow:
        """Add a `sample` step: ``n`` samples of one prompt (fields as
        :class:`~orchestrator.spec.kinds_fanout.SampleStep`: ``model``, ``max_tokens``,
        ``temperature``, ``top_p``, ``seed``, ``requests``, ``budget_tokens``...)."""
        with _defining("sample", id):
            return self.add(SampleStep(id=id, prompt=prompt, n=n, **fields))

    def spawn(self, id: str, messages: Any = None, *,
              workflow: str | Workflow | None = None, **fields: Any) -> Workflow:
        """Add a `spawn` step: one child thread per message (a list, or a reference to
        one; or give ``messages_prompt``). A child is an LLM call on ``prompt``, or runs
        ``workflow`` (a path, or a Workflow object, registered as for :meth:`call`).
        Other fields as :class:`~orchestrator.spec.kinds_fanout.SpawnStep`."""
        if messages is not None:
            fields["messages"] = messages
        if isinstance(workflow, Workflow):
            workflow = self.register_workflow(workflow)
        if workflow is not None:
            fields["workflow"] = workflow
        with _defining("spawn", id):
            return self.add(SpawnStep(id=id, **fields))

    def join(self, id: str, of: str, reducer: str = "concat", *,
             scorer: Scorer | dict[str, Any] | None = None,
             check: Scorer | dict[str, Any] | None = None, **fields: Any) -> Workflow:
        """Add a `join` step reducing the children of the fan-out ``of`` with ``reducer``
        (``concat``, ``vote``, ``best_of_n``, ``first_finish``, ``adaptive_vote``).
        ``scorer`` (best_of_n) and ``check`` (first_finish) take a
        :class:`~orchestrator.spec.kinds_fanout.Scorer` or its fields as a dict; other
        fields as :class:`~orchestrator.spec.kinds_fanout.JoinStep`."""
        if reducer != "concat":
            fields["reducer"] = reducer
        with _defining("join", id):
            for name, value in (("scorer", scorer), ("check", check)):
                if value is not None:
                    fields[name] = value  # a dict is validated as the JoinStep's field
            return self.add(JoinStep(id=id, of=of, **fields))

    def output(self, **outputs: str | list[Any] | dict[str, Any]) -> Workflow:
        """Name the workflow's outputs: each a reference or template
        (``"${steps.a.output}"``), a list holding them, or the fields of an
        :class:`~orchestrator.spec.models.OutputSpec` as a dict (``{"from": ..., "type":
        "integer"}``), as under a workflow file's ``outputs:``.

        :raises StepDefinitionError: naming an output of another type (a number, ``None``,
            a Workflow: ``wf.output(x=wf.llm(...))`` passes the builder's return value),
            or a dict that is no valid output.
        """
        for name, value in outputs.items():
            if isinstance(value, Workflow):
                raise StepDefinitionError(
                    f"output {shown(name)}: got the Workflow itself (its step methods "
                    "return it, for chaining); name a step's output instead, such as "
                    "'${steps.ID.output}'")
            if not isinstance(value, str | list | dict):
                raise StepDefinitionError(
                    f"output {shown(name)}: must be a reference or template such as "
                    "'${steps.ID.output}', a list of them, or a dict of output fields "
                    f"(from, type, description, schema), not {type(value).__name__} "
                    f"{shown(value)}")
            data = value if isinstance(value, dict) else {"from": value}
            with _defining("output", name, "output"):
                self.spec.outputs[name] = OutputSpec.model_validate(data)
        return self

    def register_tool(self, fn: Callable[..., Any] | ToolSpec, name: str | None = None, *,
                      replace: bool = False) -> ToolSpec:
        """Make a callable available to this workflow's tool steps, as ``name`` (default:
        its own name). Registering the same function again does nothing.

        :param replace: serve it in place of the built-in tool of that name (``calc``,
            ``sleep``, ``extract``), or of another function registered under it.
        :raises ConfigError: naming the built-in tool or the function already registered
            under that name, when ``replace`` is false (steps would silently call one of
            the two); for a ``fn`` that is not callable; for a name that is empty or
            holds a space or a control character (see :func:`_check_tool_name`), or a
            callable without a ``__name__`` (a ``functools.partial``) given no name.
        """
        if callable(fn) or isinstance(fn, ToolSpec):  # else the registry's error
            _check_tool_name("register_tool", fn, name)
        return self.registry.add_tool(fn, name, replace=replace)

    def register_executor(self, kind: str, executor: Executor) -> None:
        """Run steps of `kind` with this executor (replacing the installed one).

        :raises ConfigError: for a kind that is not a string, or an executor without an
            ``execute`` method (a class where an instance is wanted, say).
        """
        _check_name("register_executor", "kind", kind)
        if isinstance(executor, type) or not callable(getattr(executor, "execute", None)):
            raise ConfigError(f"register_executor {shown(kind)}: the executor must be an "
                              "object with an async execute(task, ctx) method, not "
                              f"{type(executor).__name__} {shown(executor)}")
        self.registry.executors[kind] = executor

    def register_backend(self, name: str, factory: Callable[..., Any]) -> None:
        """Make an LLM backend available under `name` (factory takes a ModelConfig).

        :raises ConfigError: for a name that is not a string, or a factory that is not
            callable.
        """
        _check_name("register_backend", "name", name)
        if not callable(factory):
            raise ConfigError(f"register_backend {shown(name)}: the factory must be callable "
                              "(a backend class, or a function of a ModelConfig), not "
                              f"{type(factory).__name__} {shown(factory)}")
        self.registry.backends[name] = factory

    def as_tool(self, name: str | None = None, description: str | None = None,
                backend: str | None = None) -> ToolSpec:
        """Expose this workflow as a tool for another workflow; its inputs are the arguments.

        :raises ConfigError: for a ``name`` or ``description`` that is not a string, a
            name a tool may not have (see :meth:`register_tool`), or a ``backend`` that
            is not installed.
        """
        from pydantic import ConfigDict, create_model

        from orchestrator.errors import ToolError

        wf = self
        check_backend(backend, self.registry)

        async def run_as_tool(**kwargs: Any) -> Any:
            result = await wf.run(kwargs, backend=backend)
            if not result.ok:
                raise ToolError(f"workflow {wf.spec.name!r} {result.status}: {result.error}")
            return result.output

        if name is not None:
            _check_name("as_tool", "name", name)
            _check_tool_name("as_tool", None, name)
        if description is not None and not isinstance(description, str):
            raise ConfigError(f"as_tool: the description must be a string, not "
                              f"{type(description).__name__} {shown(description)}")
        tool_name = name or self.spec.name
        fields = {k: (_PY_TYPES.get(v.type, Any), ... if v.is_required else v.default)
                  for k, v in self.spec.inputs.items()}
        model = create_model(  # type: ignore[call-overload]
            f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields)
        doc = description or self.spec.description or f"Run the workflow {self.spec.name}."
        return ToolSpec(tool_name, run_as_tool, doc, model, True)

    # -- running -------------------------------------------------------------------
    def compile(self) -> CompiledGraph:
        """Validate and compile; the graph is reused while nothing it was built from changed.

        What compiling reads is compared on every call: the spec (through its JSON dump,
        about a tenth of what compiling costs), the base folder and the names of the
        tools, sub-workflows and planners available. A step edited in place, a step added
        or a tool removed compiles afresh.

        :raises ValidationFailed: with every problem.
        """
        if self._compiled is not None and self._compiled[0] == self._compile_key():
            return self._compiled[1]
        problems = self._call_problems()
        try:
            graph = compile_graph(self.spec, self.source, registry=self.registry,
                                  base_dir=self.base_dir)
        except ValidationFailed as exc:
            problems = _unique([*exc.problems, *problems])
        if problems:
            raise ValidationFailed(problems)
        self._compiled = (self._compile_key(), graph)  # compiling may register spec.tools
        return graph

    def _call_problems(self) -> list[Problem]:
        """What the run of a sub-workflow would refuse of the inputs a step of this one
        passes it, as ``ponder run`` checks them first: compiling alone left them to that
        run, which failed the step once the steps before it had run. A sub-workflow that
        cannot be found or loaded is the compiler's to report, or the run's."""
        workflows = self.registry.workflows
        out: list[Problem] = []
        for call in workflow_calls(self.spec, self.registry.planner_known_steps):
            try:
                sub, _, _ = find_workflow(call.ref, self.base_dir, workflows)
            except PonderError:
                continue
            out += [self.source.problem(path, message, hint) for path, message, hint
                    in input_problems(call, sub, self.spec.inputs)]
        return out

    def _compile_key(self) -> tuple[Any, ...]:
        reg = self.registry
        return (self.spec.model_dump_json(), str(self.base_dir), frozenset(reg.tool_names()),
                frozenset(reg.workflows), frozenset(reg.planner_names()))

    async def run(self, inputs: dict[str, Any] | None = None, *, backend: str | None = None,
                  hooks: Sequence[AnyHook] | None = (), run_id: str | None = None,
                  on_scheduler: Any = None, tool_executor: str | None = None) -> RunResult:
        """Run to the end and return the result (a failed run is a result, not an error).

        :param backend: run every model on this LLM backend (``"simulated"``: no model).
        :param hooks: listeners of the run's events, a list: each is called with every
            batch of events (an async function is awaited), before the run acts on them,
            e.g. ``[StoreHook(store)]``.
        :param run_id: the run's id (a random one when ``None``): a non-empty string with
            no NUL character (no store could record it).
        :param tool_executor: run the tool steps (also those of sub-workflows) on this
            executor, e.g. ``"ray-tool"`` (``ponder run --tool-executor``); recorded, so
            that a resume runs them there again.
        :raises ValidationFailed: when the workflow is invalid.
        :raises SpecError: when the inputs are invalid (see :meth:`check_inputs`).
        :raises ConfigError: for a ``backend`` that is not installed (see
            :func:`check_backend`), before any run is recorded; for ``hooks`` that are
            not a list of callables (one function given alone, say); for a ``run_id``
            that is not a non-empty string, or holds a NUL; for an ``on_scheduler`` that
            is not callable; for a ``tool_executor`` that is not installed or does not load; for
            models whose configs lack what their backend needs here (an ``openai`` model
            with no model name, or with no server and no key) or whose ``options`` their
            backend refuses (a pool member's too): all at once, see
            :func:`~orchestrator.runtime.run_checks.check_model_configs`.
        :raises Exception: what a hook raised: the run stops there (its events could not
            be delivered).
        """
        check_backend(backend, self.registry)
        if tool_executor is not None:
            check_tool_executor(tool_executor, self.registry)
        listeners = as_hooks(hooks)
        _check_run_id(run_id)
        if on_scheduler is not None and not callable(on_scheduler):
            raise ConfigError(f"on_scheduler: must be a function of the scheduler, not "
                              f"{type(on_scheduler).__name__} {shown(on_scheduler)}")
        graph = self.compile()
        self.check_inputs(inputs or {})
        check_model_configs(graph.spec, graph.base_dir, backend, self.registry)
        return await execute(graph, inputs or {}, registry=self.registry, hooks=listeners,
                             backend=backend, run_id=run_id, on_scheduler=on_scheduler,
                             source=self.source.file if self.source.file != "<sdk>" else None,
                             tool_executor=tool_executor)

    def check_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check inputs as a run of this workflow takes them, without running it (``ponder
        run`` checks its ``--input`` options so before opening the store).

        A workflow that declares no inputs takes none: its steps cannot read one. (A
        sub-workflow's run, nested in its parent's, takes what the parent passes.)

        :returns: the inputs the run gets: defaults filled in, text given for an input of
            another type read as JSON.
        :raises SpecError: naming every unknown, missing or malformed input, or the
            value given for ``inputs`` when it is not a dict.
        """
        return check_inputs(self.spec, inputs)

    def run_sync(self, inputs: dict[str, Any] | None = None, *, backend: str | None = None,
                 hooks: Sequence[AnyHook] | None = (), run_id: str | None = None,
                 on_scheduler: Any = None, tool_executor: str | None = None) -> RunResult:
        """:meth:`run`, for code that is not async.

        Called where an event loop is already running (a Jupyter cell, an async
        function), the run gets a thread and a loop of its own and this call blocks until
        it ends; in async code ``await wf.run(...)`` does not block the loop.
        """
        def go() -> RunResult:
            return anyio.run(lambda: self.run(inputs, backend=backend, hooks=hooks,
                                              run_id=run_id, on_scheduler=on_scheduler,
                                              tool_executor=tool_executor))

        if not _in_event_loop():
            return go()  # (not inside an except block: its errors carry no context of ours)
        with ThreadPoolExecutor(1, thread_name_prefix="ponder run_sync") as pool:
            return pool.submit(go).result()

    def stream(self, inputs: dict[str, Any] | None = None, *, backend: str | None = None,
               hooks: Sequence[AnyHook] | None = (), run_id: str | None = None,
               on_scheduler: Any = None, tool_executor: str | None = None) -> RunStream:
        """Run and yield every event as it happens (the last is ``run_finished``).

        The keywords are :meth:`run`'s: ``hooks=[StoreHook(store)]`` records the run,
        each event before the loop gets it, and a run the loop leaves early as cancelled.

        ``async for event in wf.stream(inputs)`` reads the whole run; breaking out of the
        loop, or raising in it, cancels the run once the event loop closes the loop's
        generator (at once in CPython). The context-manager form cancels it on exit::

            async with wf.stream(inputs) as events:
                async for event in events:
                    ...

        Both work under asyncio and trio. Events are typed (:data:`~orchestrator.Event`):
        ``if event.kind == "run_finished"`` narrows ``event`` to that event's class.

        :raises ConfigError: for ``hooks`` that are not a list of callables, at once.
        :raises: what ended the run (invalid inputs, a hook's error), as ``run`` does,
            once the events before it are read.
        """
        return RunStream(self, inputs or {}, backend, hooks=as_hooks(hooks), run_id=run_id,
                         on_scheduler=on_scheduler, tool_executor=tool_executor)


class RunStream:
    """Events of one run, as an async iterator and an async context manager, under
    asyncio or trio (``anyio.run(main, backend="trio")``)."""

    def __init__(self, wf: Workflow, inputs: dict[str, Any], backend: str | None,
                 hooks: Sequence[AnyHook] = (), **run: Any) -> None:
        """:param run: the other keywords of :meth:`Workflow.run`."""
        self._wf, self._inputs, self._backend = wf, inputs, backend
        self._hooks, self._run = list(hooks), run
        self._tg: Any = None
        self._recv: Any = None

    def _channel(self) -> tuple[Callable[[], Awaitable[None]], Any]:
        """The run, as a function that feeds a stream, and the receive end of that stream."""
        send, recv = anyio.create_memory_object_stream[ev._Event](max_buffer_size=float("inf"))

        async def to_stream(batch: Sequence[Any]) -> None:
            for e in batch:
                try:
                    send.send_nowait(e)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the reader has gone; the run is being cancelled

        async def runner() -> None:
            with send:
                # the caller's hooks first: an event is recorded before the reader sees it
                await self._wf.run(self._inputs, backend=self._backend,
                                   hooks=[*self._hooks, to_stream], **self._run)

        return runner, recv

    async def __aenter__(self) -> AsyncIterator[Event]:
        runner, recv = self._channel()
        events: AsyncIterator[Event] = recv
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(runner)
        self._recv = recv
        return events

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        """Cancel the run if it is still going, and wait for it to end.

        :raises: what the block raised, or what ended the run, as it was raised (not
            inside the ``ExceptionGroup`` of the task group that ran it).
        """
        self._tg.cancel_scope.cancel()
        self._recv.close()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)  # type: ignore[no-any-return]
        except BaseExceptionGroup as group:
            error = _sole(group)
        raise error  # outside the except: its own __context__ stays as it was

    async def __aiter__(self) -> AsyncIterator[Event]:
        """The run's events; its own ``run_finished`` comes after the run has ended, so
        a consumer that stops there leaves nothing open behind it.

        :raises: what ended the run (invalid inputs, a hook's error), once its events
            before that are read.

        A consumer that breaks out of ``async for`` (or raises in its body) leaves this
        generator to be closed later, by the event loop and in another task: a task
        group held across a ``yield`` could not be exited there. The run is therefore a
        task apart from the consumer's (an asyncio task; under trio a system task),
        which that close cancels and waits for.
        """
        runner, recv = self._channel()
        run = _Detached.start(runner)
        final: Event | None = None
        try:
            root = None
            with recv:
                async for event in recv:
                    root = root or event.run_id
                    if event.kind == "run_finished" and event.run_id == root:
                        final = event  # the run's own, not a nested run's
                    else:
                        yield event
            await run.wait()  # the run has ended, or this raises what ended it
        finally:
            with anyio.CancelScope(shield=True):
                await run.cancel()
        if final is not None:
            yield final


class _Detached:
    """A task that runs apart from the task that starts it, so that an async generator
    can start it and a later ``aclose`` (in any task) can cancel it: an asyncio task, or
    under trio a system task."""

    @staticmethod
    def start(fn: Callable[[], Awaitable[None]]) -> _Detached:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: anyio's other backend
            return _TrioDetached(fn)
        return _AsyncioDetached(fn)

    async def wait(self) -> None:
        """Wait for the task to end; raises what ended it."""
        raise NotImplementedError

    async def cancel(self) -> None:
        """Cancel the task if it has not ended, and wait for it to (what it raised is
        dropped: :meth:`wait` reports it)."""
        raise NotImplementedError


class _AsyncioDetached(_Detached):
    def __init__(self, fn: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            await fn()

        self._task = asyncio.get_running_loop().create_task(main())

    async def wait(self) -> None:
        await self._task

    async def cancel(self) -> None:
        if not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])
        if not self._task.cancelled():
            self._task.exception()  # retrieved: after a break nobody else will


class _TrioDetached(_Detached):
    def __init__(self, fn: Callable[[], Awaitable[None]]) -> None:
        import trio

        self._scope = trio.CancelScope()
        self._done = trio.Event()
        self._error: BaseException | None = None

        async def main() -> None:
            try:
                with self._scope:
                    await fn()
            except trio.Cancelled:
                raise  # the whole trio run is ending
            except BaseException as exc:  # a system task may not raise: trio would crash
                self._error = exc
            finally:
                self._done.set()

        trio.lowlevel.spawn_system_task(main, name="ponder RunStream")

    async def wait(self) -> None:
        await self._done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    async def cancel(self) -> None:
        self._scope.cancel()
        await self._done.wait()


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error inside (nested) exception groups, or the group when it holds more."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _in_event_loop() -> bool:
    """Whether this thread is running an event loop (asyncio's, or trio's)."""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    try:
        import trio
    except ImportError:
        return False
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


#: the step models (the members of the ``Step`` union)
_STEP_TYPES: tuple[type[BaseModel], ...] = get_args(get_args(Step)[0])
#: each step model by its ``kind``
_STEP_KINDS: dict[str, type[BaseModel]] = {t.model_fields["kind"].default: t
                                           for t in _STEP_TYPES}

_PY_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                             "array": list, "object": dict}


def _unique(problems: list[Problem]) -> list[Problem]:
    """``problems`` without repeats, in their order."""
    return list(dict.fromkeys(problems))


@contextmanager
def _defining(kind: str, id: Any, what: str = "step") -> Iterator[None]:
    """Turn pydantic's error about a step being built into one naming the step."""
    try:
        yield
    except ValidationError as exc:
        label = f"{kind} {what}" if what == "step" else what
        raise StepDefinitionError(f"{label} {shown(id)}: {validation_summary(exc)}") from None


def _input_spec(name: str, value: str | dict[str, Any] | InputSpec) -> InputSpec:
    """An input of :class:`Workflow`'s ``inputs``: a type name, a dict of input fields or
    an InputSpec.

    :raises StepDefinitionError: naming the input and what is wrong with it.
    """
    if isinstance(value, InputSpec):
        return value
    if not isinstance(value, str | dict):
        raise StepDefinitionError(
            f"input {shown(name)}: give a type name ('string', 'integer', ...), a dict of "
            f"input fields or an InputSpec, not {type(value).__name__} {shown(value)}")
    with _defining("input", name, "input"):
        if isinstance(value, str):
            return InputSpec(type=value)
        return InputSpec.model_validate(value)


def _check_name(method: str, what: str, value: object) -> None:
    """:raises ConfigError: when a registration's name is not a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{method}: the {what} must be a non-empty string, not "
                          f"{type(value).__name__} {shown(value)}")


def _check_tool_name(method: str, fn: object, name: object) -> None:
    """Check the name a tool is registered under: ``name``, or when it is ``None`` the
    one ``fn`` brings (a ToolSpec's, an ``@tool``'s, the function's ``__name__``).

    The rule is a workflow file's (:func:`~orchestrator.spec.models.tool_name_problem`);
    an empty name was silently replaced by the function's.

    :raises ConfigError: naming the name, or the callable that has none.
    """
    if name is None:
        own = fn if isinstance(fn, ToolSpec) else getattr(fn, "__ponder_tool__", None)
        name = own.name if isinstance(own, ToolSpec) else getattr(fn, "__name__", None)
        if name is None:
            raise ConfigError(f"{method}: {shown(fn)} has no __name__ to serve it under: "
                              "pass name='...'")
    if not isinstance(name, str):
        return  # the registry names the type
    problem = tool_name_problem(name)
    if problem is not None:
        raise ConfigError(f"{method}: {problem}")


def _check_run_id(run_id: object) -> None:
    """:raises ConfigError: for a run id that is not ``None`` or a non-empty string, or
    that holds a NUL character (no store can record it: see ``no_run_id``)."""
    if run_id is None:
        return
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError(f"run_id: must be a non-empty string (or None for a random id), "
                          f"not {type(run_id).__name__} {shown(run_id)}")
    if no_run_id(run_id):
        raise ConfigError(f"run_id {shown(run_id)}: holds a NUL character, which no trace "
                          "store can record")
