"""Run a compiled workflow: build step plans, wire executors and hooks, fold the result.

This module connects the pure pieces (graph, state) with the loop (scheduler) and the
outside world (executors found through the registry, hooks).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from orchestrator.errors import (
    ConfigError,
    MissingPathError,
    ReferenceResolutionError,
    SpecError,
    TemplateRenderError,
    shown,
    without_step_id,
)
from orchestrator.graph.compile import CompiledGraph, compile_workflow, estimate_cost
from orchestrator.graph.subworkflows import inherit_models, model_aliases
from orchestrator.runtime import events as ev
from orchestrator.runtime._process import writer_fields
from orchestrator.runtime.contracts import Executor, Hook, LLMBackend, Usage
from orchestrator.runtime.registry import Registry, ToolSpec, import_callable, tool_spec
from orchestrator.runtime.scheduler import (
    Deferred,
    Scheduler,
    StepPlan,
    _jsonable,
    _Patch,
    built,
    cut_short_of,
    event_usage,
)
from orchestrator.runtime.state import Status
from orchestrator.spec import templates
from orchestrator.spec.kinds_fanout import MAX_NESTING_DEPTH
from orchestrator.spec.loader import find_workflow, path_text, spec_to_data
from orchestrator.spec.models import (
    BranchStep,
    MapStep,
    ModelConfig,
    WorkflowSpec,
    json_type_ok,
    non_finite,
    shown_json,
)
from orchestrator.spec.refs import Resolver, Scope, compile_value, resolve, step_deps
from orchestrator.spec.schema_check import schema_problem
from orchestrator.store._models import StepRecord


class RunResult:
    """The outcome of a run. ``steps`` is folded from the run's events on first use."""

    def __init__(self, run_id: str, workflow: str, status: str, output: Any, fold: Any,
                 usage: Usage, duration_s: float, error: str | None = None) -> None:
        self.run_id = run_id
        self.workflow = workflow
        self.status = status
        self.output = output
        self.usage = usage
        self.duration_s = duration_s
        self.error = error
        self._fold = fold
        self._steps: list[StepRecord] | None = None

    @property
    def steps(self) -> list[StepRecord]:
        """Every step with status, attempts, timing, tokens and error."""
        if self._steps is None:
            fold = self._fold() if callable(self._fold) else self._fold
            self._steps = fold.record().steps
        return self._steps

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def __repr__(self) -> str:
        return (f"RunResult(run_id={self.run_id!r}, status={self.status!r}, "
                f"output={self.output!r}, error={self.error!r})")

    def to_json(self) -> dict[str, Any]:
        """The document printed by ``ponder run --json``."""
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "steps": [_step_json(s) for s in self.steps],
            "usage": {"prompt_tokens": self.usage.prompt_tokens,
                      "completion_tokens": self.usage.completion_tokens},
            "duration_s": round(self.duration_s, 6),
        }


def _step_json(s: StepRecord) -> dict[str, Any]:
    return {
        "id": s.id, "kind": s.kind, "status": s.status, "attempts": s.attempts,
        "started_at": s.started_at, "finished_at": s.finished_at,
        # as `ponder show --json` gives it (the fold's): without a resume's downtime
        "duration_s": s.duration_s, "error": s.error,
        "parent": s.parent, "output": s.output,
        "usage": {"prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens},
    }


def validate_inputs(spec: WorkflowSpec, given: dict[str, Any]) -> dict[str, Any]:
    """Check inputs against the workflow's declarations, filling defaults.

    Strings given for non-string inputs (from the command line) are parsed as JSON.

    :raises SpecError: naming every bad, missing or unknown input.
    """
    if not given and not spec.inputs:
        return {}
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name in given:
        if name not in spec.inputs and spec.inputs:
            problems.append(f"unknown input {shown(name)} (declared: {', '.join(spec.inputs)})")
    for name, decl in spec.inputs.items():
        if name not in given:
            if decl.is_required:
                problems.append(f"missing input {name!r} ({decl.type})")
            else:
                out[name] = decl.default
            continue
        try:
            out[name] = decl.accept(name, given[name])
        except ValueError as exc:
            problems.append(str(exc))
    if not spec.inputs:
        # undeclared inputs are taken as they are, but not a number JSON has none for
        # (the SDK's wf.run(inputs=...) gives floats; no store or JSON output holds NaN)
        for name, value in given.items():
            where = non_finite(value, name)
            if where is not None:
                problems.append(f"input {name!r}: {where}, which JSON has no number for")
        out.update(given)
    if problems:
        raise SpecError("; ".join(problems))
    return out


class BackendCache:
    """LLM backend instances of a run (and its nested runs), closed together."""

    def __init__(self, registry: Registry, override: str | None = None) -> None:
        self.registry = registry
        self.override = override
        self._instances: dict[str, LLMBackend] = {}

    def config(self, spec: WorkflowSpec, alias: str) -> ModelConfig:
        cfg = spec.models.get(alias)
        if cfg is None:
            if alias != "default" and spec.models:
                raise ConfigError(f"unknown model {alias!r}; declared: {', '.join(spec.models)}")
            cfg = spec.models.get("default") or ModelConfig()
        if self.override and cfg.backend != self.override:
            # the options were written for the model's own backend: another would refuse
            # them (a local model's n_ctx under --backend simulated)
            cfg = cfg.model_copy(update={"backend": self.override, "options": {}})
        return cfg

    def get(self, cfg: ModelConfig) -> LLMBackend:
        key = cfg.model_dump_json()
        inst = self._instances.get(key)
        if inst is None:
            factory = self.registry.backend_factory(cfg.backend)
            inst = self._instances[key] = factory(cfg)
        return inst

    @property
    def opened(self) -> bool:
        """Whether any backend was made (and so has to be closed)."""
        return bool(self._instances)

    async def aclose(self) -> None:
        for inst in self._instances.values():
            await inst.aclose()
        self._instances.clear()


class RecordedChildren(Protocol):
    """What a resumed run knows of the child runs its steps started before it was
    interrupted (:mod:`orchestrator.runtime.durable` makes one from a trace store): asked
    before a step starts a sub-workflow, so that the child recorded for the step's attempt
    in flight goes on under its own id instead of starting again."""

    async def run_child(self, ctx: RunContext, graph: CompiledGraph, inputs: dict[str, Any],
                        parent_step_id: str, attempt: int,
                        spawn_depth_limit: int) -> RunResult | None:
        """The result of the child run recorded for ``parent_step_id``: its recorded
        result when it succeeded, else the result of continuing it.

        :param attempt: the attempt of ``parent_step_id`` that asks (the one that now
            runs the child).
        :returns: ``None`` when there is no such child to take (none recorded, it failed,
            or its inputs differ): the step starts a new one.
        """
        ...


@dataclass
class RunContext:
    """The ExecContext given to executors."""

    run_id: str
    base_dir: Path
    registry: Registry
    spec: WorkflowSpec
    backends: BackendCache
    hooks: Sequence[Hook]
    depth: int = 0
    #: the depth down to which a spawn in this run may start children: the smallest
    #: ``max_depth`` of the spawns this run descends from (a child cannot raise it)
    spawn_depth_limit: int = MAX_NESTING_DEPTH
    scheduler: Scheduler | None = field(default=None, repr=False)
    #: steps whose failure or cancellation the step that added them handles (fan-out
    #: children under a join's policy): they do not fail the run
    handled: set[str] = field(default_factory=set, repr=False)
    #: step id -> the spawn depth limit its nested run inherits (set by a spawn for its
    #: sub-workflow children)
    _child_spawn_limits: dict[str, int] = field(default_factory=dict, repr=False)
    #: the child runs an earlier execution of this run started (a resumed run)
    recorded: RecordedChildren | None = field(default=None, repr=False)
    #: :meth:`step_model_aliases`, once asked
    _step_aliases: frozenset[str] | None = field(default=None, repr=False)

    def step_model_aliases(self) -> frozenset[str] | None:
        """The model aliases this run's steps name
        (:func:`~orchestrator.graph.subworkflows.model_aliases`), which a sub-workflow
        without ``models:`` may name when the run's workflow declares none; None when it
        declares some. Read once per run: each sub-workflow read every step of the
        workflow for them, so n ``workflow`` steps cost n² step dumps."""
        if self.spec.models:
            return None
        if self._step_aliases is None:
            self._step_aliases = model_aliases(self.spec)
        return self._step_aliases

    def limit_spawn_depth(self, step_id: str, limit: int) -> None:
        """Hold the nested run of ``step_id`` (a spawn's child) and everything below it to
        spawns starting children down to depth ``limit`` at most."""
        self._child_spawn_limits[step_id] = min(limit, self.spawn_depth_limit)

    def model_config(self, model: str) -> ModelConfig:
        return self.backends.config(self.spec, model)

    def backend(self, model: str) -> LLMBackend:
        return self.backends.get(self.model_config(model))

    async def emit(self, events: Sequence[ev._Event]) -> None:
        for hook in self.hooks:
            await hook(events)

    def record(self, cls: type[ev._Event], **fields: Any) -> None:
        """Record an event of this run (e.g. a planner's decision) with the next sequence
        number; it reaches the hooks with the scheduler's next batch."""
        assert self.scheduler is not None
        self.scheduler.event(cls, **fields)

    async def add_steps(self, parent_step_id: str, steps: Sequence[Any], *, reason: str,
                        locals_: dict[str, dict[str, Any]] | None = None,
                        cancellable: bool = False, handled: bool = False) -> list[str]:
        """Add steps to the live graph under a parent step; they start when ready.

        Their dependencies come from their references (and `after`); they may refer to
        any step already in the graph. Returns their ids.

        :param handled: the caller handles their failure or cancellation (a fan-out under
            a join's policy): such a step does not fail the run.
        """
        from orchestrator.graph.compile import estimate_cost, pool_for, step_dependencies

        assert self.scheduler is not None
        sched = self.scheduler
        base = sched.plans[parent_step_id].priority if parent_step_id in sched.plans else 0.0
        plans = []
        for step in steps:
            plans.append(StepPlan(step.id, step.kind, step, tuple(sorted(step_dependencies(step))),
                                  pool_for(step.kind, step), base + estimate_cost(step),
                                  (locals_ or {}).get(step.id), cancellable=cancellable))
        if handled:
            self.handled.update(p.id for p in plans)
        await sched.add_steps(_Patch(parent_step_id, reason, plans))
        return [p.id for p in plans]

    async def wait_steps(self, step_ids: Sequence[str]) -> dict[str, Any]:
        """Wait for steps to resolve; returns StepOutcome (status, output, error) by id."""
        assert self.scheduler is not None
        return await self.scheduler.wait_steps(step_ids)

    def cancel_steps(self, step_ids: Sequence[str]) -> None:
        """Cancel running steps that were added as ``cancellable``."""
        assert self.scheduler is not None
        for sid in step_ids:
            self.scheduler.cancel_step(sid)

    def note_usage(self, step_id: str, usage: Usage) -> None:
        """Record the tokens a step's attempt used before it was cancelled or failed (its
        executor calls this while unwinding); its step_cancelled/step_failed event shows them."""
        assert self.scheduler is not None
        self.scheduler.step_usage[step_id] = usage

    async def run_child(self, workflow: str, inputs: dict[str, Any],
                        parent_step_id: str, attempt: int | None = None) -> RunResult:
        """Run a sub-workflow (a registered name or a path relative to this workflow).

        In a resumed run, the child that the step's interrupted attempt had started goes
        on under its own id instead (or gives its recorded result, when it had finished
        successfully): see :class:`RecordedChildren`.

        :param attempt: the attempt of ``parent_step_id`` running the child (recorded in
            the child's ``run_started``); default: the step's current one.
        :raises ConfigError: when the run would be nested deeper than
            :data:`~orchestrator.spec.kinds_fanout.MAX_NESTING_DEPTH`.
        """
        if self.depth >= MAX_NESTING_DEPTH:
            raise ConfigError(
                f"step {parent_step_id!r}: sub-workflow {workflow!r} would run at nesting "
                f"depth {self.depth + 1}, past the limit of {MAX_NESTING_DEPTH} nested runs "
                "(a workflow that calls itself without end?)")
        graph = load_graph_ref(workflow, self.base_dir, self.registry, parent=self.spec,
                               parent_aliases=self.step_model_aliases())
        limit = self._child_spawn_limits.get(parent_step_id, self.spawn_depth_limit)
        if attempt is None:
            sched = self.scheduler
            st = sched.state.steps.get(parent_step_id) if sched is not None else None
            attempt = st.attempts if st is not None and st.attempts > 0 else 1
        if self.recorded is not None:
            again = await self.recorded.run_child(self, graph, inputs, parent_step_id,
                                                  attempt, limit)
            if again is not None:
                return again
        return await execute(
            graph, inputs, registry=self.registry, hooks=self.hooks, backends=self.backends,
            parent=(self.run_id, parent_step_id), parent_attempt=attempt,
            depth=self.depth + 1, spawn_depth_limit=limit,
            nested_in=(self.scheduler, parent_step_id) if self.scheduler is not None else None)


def load_graph_ref(ref: str, base_dir: Path, registry: Registry,
                   parent: WorkflowSpec | None = None,
                   parent_aliases: frozenset[str] | None = None) -> CompiledGraph:
    """Compile a workflow given by registered name or by path.

    :param parent: the workflow that runs it, whose models it runs on when it declares
        none (see :func:`~orchestrator.graph.subworkflows.inherit_models`).
    :param parent_aliases: the model aliases the steps of ``parent`` name, when known.
    """
    spec, smap, base = find_workflow(ref, base_dir, registry.workflows)
    given: frozenset[str] = frozenset()
    if parent is not None:
        spec, given = inherit_models(spec, parent, parent_aliases=parent_aliases)
    return compile_graph(spec, smap, registry=registry, base_dir=base, models_given=given)


def compile_graph(spec: WorkflowSpec, smap: Any = None, *, registry: Registry,
                  base_dir: Path | None = None,
                  models_given: frozenset[str] = frozenset()) -> CompiledGraph:
    """Import the workflow's own tools (see :func:`workflow_tools`), then validate and
    compile it. The tools are the graph's (``CompiledGraph.own_tools``), served to its
    runs over the registry's, which is left as it is.

    :param models_given: model aliases a step may name besides those of ``models:``
        (see :func:`~orchestrator.graph.compile.compile_workflow`).

    :raises ValidationFailed: with every problem.
    """
    base = base_dir or Path(".")
    own = workflow_tools(spec, registry, base, smap)
    scoped = registry.with_workflow_tools(own)
    graph = compile_workflow(spec, smap, tool_names=scoped.tool_names(), base_dir=base,
                             workflow_names=set(scoped.workflows),
                             planner_names=scoped.planner_names(),
                             planner_options=scoped.planner_option_problems,
                             tool_arguments=scoped.tool_arguments,
                             models_given=models_given)
    graph.own_tools = own
    return graph


def workflow_tools(spec: WorkflowSpec, registry: Registry, base_dir: Path,
                   smap: Any = None) -> dict[str, ToolSpec]:
    """The workflow's ``tools:`` imported (modules next to the workflow first): name ->
    spec. A sub-workflow whose ``tools:`` defines a name of its parent's anew gets its own
    function. An entry may not take a built-in tool's name (``calc: mymod:f`` ran the
    built-in), nor that of a tool registered in Python as another function.

    :raises ValidationFailed: naming the entry, at its line.
    """
    own: dict[str, ToolSpec] = {}
    for name, target in spec.tools.items():
        hint = "check the module path"
        try:
            clash = registry.workflow_tool_problem(name)
            if clash is None:
                fn = import_callable(target, base_dir)
                clash = registry.workflow_tool_problem(name, fn)
            if clash is not None:
                hint = "give yours another name"
                raise ConfigError(clash)
            taken = registry.tools.get(name)
            own[name] = taken if taken is not None and taken.fn is fn else tool_spec(fn, name)
        except ConfigError as exc:
            from orchestrator.errors import Problem, ValidationFailed

            line, col = smap.locate(("tools", name)) if smap else (0, 0)
            raise ValidationFailed([Problem(str(exc), hint, smap.file if smap else "<sdk>",
                                            line, col)]) from None
    return own


# -- per-kind input preparation and control steps -------------------------------------
def _scope(sched: Scheduler, plan: StepPlan, inputs: dict[str, Any]) -> Scope:
    return Scope(inputs, sched.state.values, plan.locals, sched.state.branch_skipped)


def _template_vars(sched: Scheduler, plan: StepPlan, inputs: dict[str, Any]) -> dict[str, Any]:
    return _scope(sched, plan, inputs).template_vars()


def _compiled_args(step: Any, kind: str, graph: CompiledGraph,
                   cache: dict[str, tuple[Any, Resolver]]) -> Resolver:
    """The step's arguments (tool ``args``, workflow ``inputs``) with their references
    parsed once per graph for the graph's own steps (steps added at run time, usually
    dispatched once, are compiled when dispatched). ``cache``: the graph's."""
    hit = cache.get(step.id)
    if hit is not None and hit[0] is step:
        return hit[1]
    compiled = compile_value(step.args if kind == "tool" else step.inputs)
    node = graph.nodes.get(step.id)
    if node is not None and node.step is step:
        cache[step.id] = (step, compiled)
    return compiled


def _make_preparer(inputs: dict[str, Any], graph: CompiledGraph) -> Any:
    compiled: dict[str, tuple[Any, Resolver]] = graph.run_cache.setdefault("args", {})

    def prepare(sched: Scheduler, plan: StepPlan) -> dict[str, Any]:
        try:
            return prepare_inputs(sched, plan)
        except TemplateRenderError as exc:
            raise graph.locate_template_error(exc, plan.id, plan.step, plan.group) from None

    def prepare_inputs(sched: Scheduler, plan: StepPlan) -> dict[str, Any]:
        step = plan.step
        kind = plan.kind
        if kind == "tool":
            try:
                args = _compiled_args(step, kind, graph, compiled)(
                    Scope(inputs, sched.state.values, plan.locals, sched.state.branch_skipped))
            except MissingPathError as exc:
                raise _located(graph, plan, _as_written(step, exc), "args", step.args) \
                    from None
            return {"tool": step.tool, "args": args}
        if kind == "llm":
            tvars = _template_vars(sched, plan, inputs)
            out = {"prompt": templates.render(step.prompt, tvars), "system": None}
            if step.system:
                out["system"] = templates.render(step.system, tvars)
            return out
        scope = _scope(sched, plan, inputs)
        if kind == "workflow":
            try:
                passed = _compiled_args(step, kind, graph, compiled)(scope)
            except MissingPathError as exc:
                raise _located(graph, plan, exc, "inputs", step.inputs) from None
            return {"workflow": step.workflow, "inputs": passed}
        out = {f: resolve(getattr(step, f), scope) for f in getattr(step, "resolved_fields", ())}
        template_fields = getattr(step, "template_fields", ())
        if template_fields:
            tvars = _template_vars(sched, plan, inputs)
            for f in template_fields:
                src = getattr(step, f)
                out[f] = templates.render(src, tvars) if isinstance(src, str) else None
        return out

    return prepare


def _located(graph: CompiledGraph, plan: StepPlan, exc: MissingPathError, field: str,
             value: Any) -> MissingPathError:
    """``exc`` led by where its reference is written: the step, the field holding it and
    its file:line (``step 'b' args.x (flow.yaml:14)``), as a template's error is; the
    reference's own text was all a run's error said of it."""
    inner = _holding(value, exc.reference)
    if inner is None:
        return exc
    parts = (field, *inner)
    return MissingPathError(exc.reference, exc.detail,
                            _field_place(graph, plan.id, plan.group, parts))


def _holding(value: Any, text: str) -> tuple[str | int, ...] | None:
    """The path inside ``value`` of the first string that holds ``text``; None if none."""
    if isinstance(value, str):
        return () if text in value else None
    items = value.items() if isinstance(value, dict) else \
        enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _holding(item, text)
        if found is not None:
            return (key, *found)
    return None


def _field_place(graph: CompiledGraph, step_id: str, owner: str | None,
                 parts: tuple[str | int, ...]) -> str:
    """``step 'b' args.x (flow.yaml:14)``: a field of a step and its file line; a map
    item's field is its body's (``owner`` the map); without the file:line for a step the
    workflow file does not hold (a planner's, one built in Python)."""
    return _placed(graph, f"step {step_id!r} {path_text(parts)}",
                   graph.step_path(step_id, owner), parts)


def _placed(graph: CompiledGraph, where: str, base: tuple[str | int, ...] | None,
            parts: tuple[str | int, ...]) -> str:
    """``where`` followed by the file:line of ``parts`` inside the step defined at
    ``base`` (:meth:`CompiledGraph.step_path`); alone when no file line holds it."""
    line = graph.source.locate((*base, *parts))[0] if base is not None else 0
    return f"{where} ({graph.source.file}:{line})" if line else where


def _as_written(step: Any, exc: MissingPathError) -> MissingPathError:
    """``exc`` naming its reference as the step's author wrote it: a step a planner made
    (a plan's ``$1.area``, which the step holds as ``${steps.p__1.output.area}``) may have
    ``written_reference(text) -> str``, giving the planner's notation of a reference."""
    written = getattr(step, "written_reference", None)
    if written is None:
        return exc
    return MissingPathError(written(exc.reference), exc.detail)


def _control_failed(sched: Scheduler, plan: StepPlan, error: str, etype: str) -> None:
    sched.event(ev.StepFailed, step_id=plan.id, attempt=1, error=error, error_type=etype)
    sched.state.fail(plan.id, error)


def _make_control(inputs: dict[str, Any], graph: CompiledGraph) -> dict[str, Any]:
    pool_of: dict[str, Callable[[Any], str]] = {
        "llm": lambda body: f"llm:{body.model}", "tool": lambda b: "tool",
        "workflow": lambda b: "workflow"}
    joined_maps = _graph_facts(graph)["joined_maps"]

    def run_map(sched: Scheduler, plan: StepPlan) -> None:
        step: MapStep = plan.step
        try:
            items = resolve(step.over, _scope(sched, plan, inputs))
        except ReferenceResolutionError as exc:
            if isinstance(exc, MissingPathError):
                exc = _located(graph, plan, exc, "over", step.over)
            sched.event(ev.StepStarted, step_id=plan.id, step_kind="map", attempt=1, input={})
            _control_failed(sched, plan, str(exc), "ReferenceResolutionError")
            return
        sched.event(ev.StepStarted, step_id=plan.id, step_kind="map", attempt=1,
                    input={"items": items if isinstance(items, list) and len(items) <= 50
                           else f"<{type(items).__name__}>"})
        if not isinstance(items, list):
            _control_failed(sched, plan, f"map {plan.id!r}: `over` must be a list, got "
                            f"{_json_kind(items)}"
                            + (f" {shown_json(items, 80)}" if items is not None else ""),
                            "TypeError")
            return
        cost = estimate_cost(step)
        # the map's timeout_s and retry are its items' (a map has no attempt of its own),
        # as `defaults:` are, one level closer: the body's own win
        inherited: dict[str, Any] = {"timeout_s": step.timeout_s} \
            if step.timeout_s is not None and step.step.timeout_s is None else {}
        # a retry field by field (the body's over the map's), once for all the items: one
        # object, which the scheduler puts over `defaults.retry` once
        body_retry = step.step.retry
        if body_retry is not None or step.retry is not None:
            inherited["retry"] = (body_retry.over(step.retry) if body_retry and step.retry
                                  else body_retry or step.retry)
        children = []
        for i, item in enumerate(items):
            child = step.step.to_step(f"{plan.id}[{i}]").model_copy(update=inherited)
            children.append(StepPlan(
                child.id, child.kind, child, (), pool_of[child.kind](child),
                plan.priority - cost + estimate_cost(child),
                # the item after `index`: a map `as: index` names its item so, as written
                {**(plan.locals or {}), "index": i, step.item_var: item}, group=plan.id,
                cancellable=plan.id in joined_maps))
        if plan.id in joined_maps:
            # the join's policy handles failed items (and first-finish cancels losers)
            sched.tolerant_groups.add(plan.id)
            handled: set[str] = getattr(sched.ctx, "handled", set())
            handled.update(c.id for c in children)
        sched.apply_patch_now(_Patch(plan.id, "map", children, plan.id, step.concurrency))

    def run_branch(sched: Scheduler, plan: StepPlan) -> None:
        step: BranchStep = plan.step
        tvars = _template_vars(sched, plan, inputs)
        chosen: list[str] | None = None
        for c, case in enumerate(step.cases):
            try:
                hit = templates.evaluate(case.when, tvars)
            except ReferenceResolutionError as exc:
                sched.event(ev.StepStarted, step_id=plan.id, step_kind="branch", attempt=1,
                            input={})
                _control_failed(sched, plan, f"{_case_place(graph, plan.id, c)}: {exc}",
                                "ReferenceResolutionError")
                return
            if hit:
                chosen = case.then
                break
        taken = chosen if chosen is not None else step.default
        sched.event(ev.StepStarted, step_id=plan.id, step_kind="branch", attempt=1,
                    input={"cases": [c.when for c in step.cases]})
        sched.state.exclude(graph.branch_targets.get(plan.id, set()) - set(taken))
        output = {"taken": taken}
        sched.event(ev.StepSucceeded, step_id=plan.id, attempt=1, output=output)
        sched.state.succeed(plan.id, output)

    return {"map": run_map, "branch": run_branch}


def _case_place(graph: CompiledGraph, step_id: str, c: int) -> str:
    """Where a branch's case ``c`` is: ``step 'route' case 2 (flow.yaml:9)``, the line of
    its ``when``; without the file:line for a branch the workflow file does not hold."""
    return _placed(graph, f"step {step_id!r} case {c + 1}", graph.step_path(step_id),
                   ("cases", c, "when"))


def _json_kind(value: Any) -> str:
    """A value's JSON type, as a message names it."""
    for name in ("string", "boolean", "integer", "number", "object", "array"):
        if json_type_ok(value, name):
            return "an " + name if name[0] in "aeiou" else "a " + name
    return "null" if value is None else type(value).__name__


def _resolve_outputs(spec: WorkflowSpec, graph: CompiledGraph, inputs: dict[str, Any],
                     values: dict[str, Any], skipped: set[str] | frozenset[str] = frozenset()
                     ) -> Any:
    scope = Scope(inputs, values, skipped=skipped)
    if not spec.outputs:
        sinks = _graph_facts(graph)["sinks"]
        if len(sinks) == 1:
            return values.get(sinks[0])
        return {s: values.get(s) for s in sinks}
    out = {}
    for name, decl in spec.outputs.items():
        value = resolve(decl.value, scope)
        if not json_type_ok(value, decl.type) and not (
                value is None and skipped and step_deps(decl.value) & skipped):
            # (an output read from a step that a branch did not take is null, whatever
            # its type: the path the run took did not make it)
            raise ReferenceResolutionError(
                f"output {name!r} must be {decl.type}, got {shown_json(value)}")
        if decl.json_schema is not None and not (value is None and skipped
                                                 and step_deps(decl.value) & skipped):
            problem = schema_problem(value, decl.json_schema)
            if problem is not None:
                raise ReferenceResolutionError(
                    f"output {name!r} does not satisfy its schema: {problem}")
        out[name] = value
    return out


# -- running -----------------------------------------------------------------------
async def execute(
    graph: CompiledGraph,
    inputs: dict[str, Any],
    *,
    registry: Registry,
    hooks: Sequence[Hook] = (),
    backend: str | None = None,
    backends: BackendCache | None = None,
    run_id: str | None = None,
    parent: tuple[str, str | None] | None = None,
    parent_attempt: int | None = None,
    depth: int = 0,
    spawn_depth_limit: int = MAX_NESTING_DEPTH,
    preset: dict[str, Any] | None = None,
    attempts: dict[str, int] | None = None,
    first_seq: int = 0,
    on_scheduler: Any = None,
    source: str | None = None,
    executor_override: dict[str, Executor] | None = None,
    carried: Sequence[tuple[type[ev._Event], dict[str, Any]]] = (),
    prior_usage: Usage | None = None,
    prior_s: float = 0.0,
    recorded: RecordedChildren | None = None,
    nested_in: tuple[Scheduler, str] | None = None,
    prior_events: Sequence[Any] = (),
    retry_due: dict[str, tuple[float, float]] | None = None,
    left_open: dict[str, tuple[int, Usage, str]] | None = None,
    tool_executor: str | None = None,
) -> RunResult:
    """Run a compiled workflow to the end (or until cancelled).

    :param hooks: event listeners, awaited in order for every batch.
    :param backend: override every model's backend (``--backend``); recorded in
        ``run_started`` (a nested run records the override of the run it is nested in).
    :param parent: the run and step this run belongs to (a sub-workflow's run), or the
        run it replays (and the step it forks from).
    :param parent_attempt: for a sub-workflow's run, the attempt of the parent step
        that runs it.
    :param preset: step outputs already known (resume, replay): those steps do not run.
    :param attempts: attempts already made per step (resume), so new ones count on.
    :param first_seq: sequence number of the first event (a resumed run continues).
    :param prior_usage: tokens the run used before (resume): they count towards its
        budget and its total.
    :param prior_s: seconds the run ran before (resume: its earlier executions, the
        downtime between them left out): its ``duration_s`` counts them.
    :param executor_override: step kind -> executor, over the registry's (replay).
    :param carried: events (class, fields) recorded right after ``run_started``, before
        anything runs: a fork records the results it takes from its parent run, so that
        its own trace holds every output it used.
    :param on_scheduler: called with the Scheduler before it starts (for ``cancel()``).
    :param spawn_depth_limit: the depth down to which this run's spawns may start
        children (a nested run inherits its ancestor spawns' ``max_depth``).
    :param recorded: the child runs that an earlier execution of this run started
        (resume): a step's sub-workflow goes on from its recorded child.
    :param nested_in: for a sub-workflow's run, the scheduler of the run it is nested in
        and the step that runs it: its tokens count towards that run's budget (and those
        above it) as they are spent, so a sub-workflow cannot spend past them.
    :param prior_events: the run's events of its earlier executions (resume), in order:
        ``RunResult.steps`` folds them before this execution's, so that each step's record
        is the one ``ponder show`` gives (its ``started_at``, ``duration_s``, attempts).
    :param retry_due: steps whose earlier execution stopped in a retry back-off (resume)
        -> when it began (Unix time) and its length: the rest is waited out before their
        next attempt.
    :param left_open: steps that the earlier execution left open (resume: added,
        scheduled, running or retrying when it stopped) -> the attempt, the tokens of it
        that no event counted, and why it is superseded. Each that this execution does
        not run again under its id (a plan's action whose plan ran again, a fan-out's
        sample whose fan-out did) is recorded as cancelled when the run ends, so that a
        finished run shows no step still running.
    :param tool_executor: the executor, by name, that runs the tool steps of this run and
        of the runs nested in it (``--tool-executor``) instead of the registry's ``tool``;
        recorded in ``run_started``, so that a resume runs them there again.
    :raises SpecError: when inputs do not validate.
    :raises ConfigError: for a ``tool_executor`` that is not installed.
    """
    spec = graph.spec
    values_in = validate_inputs(spec, inputs)
    if tool_executor is not None:
        registry = registry.copy()  # the caller's registry is left as it is
        registry.executors["tool"] = registry.executor(tool_executor)
    registry = registry.with_workflow_tools(graph.own_tools)  # this run's, over the registry's
    rid = run_id or os.urandom(8).hex()
    source = _absolute_source(source)
    own_backends = backends is None
    cache = backends or BackendCache(registry, backend)
    hook_list = list(hooks)
    # the run's events, for RunResult.steps
    log = _RunLog(rid, preset or {}, attempts or {}, convert=not hook_list,
                  prior=prior_events)

    failed_hook: list[int] = []  # the position of the hook that raised, if one did

    async def emit(batch: Sequence[ev._Event]) -> None:
        for i, hook in enumerate(hook_list):
            try:
                await hook(batch)
            except Exception:
                failed_hook.append(i)
                raise

    ctx = RunContext(rid, graph.base_dir, registry, spec, cache, hook_list, depth,
                     min(spawn_depth_limit, MAX_NESTING_DEPTH), recorded=recorded)
    plans = _graph_plans(graph)
    pool_limits = _pool_limits(graph, cache, spec)

    def executor_for(kind: str) -> Executor:
        if executor_override and kind in executor_override:
            return executor_override[kind]
        return registry.executor(kind)

    # load the executors of the kinds the run will need before it starts: loading one the
    # first time imports its module (a fan-out's took 0.6 s), which inside the loop held
    # up every step then running (one missing is left to fail its step, as before)
    for kind in _graph_facts(graph)["kinds"]:
        if kind not in registry.executors and kind not in _CONTROL_KINDS:
            with contextlib.suppress(ConfigError):
                executor_for(kind)

    def model_for(plan: StepPlan) -> ModelConfig | None:
        return cache.config(spec, plan.step.model) if plan.kind == "llm" else None

    sched = Scheduler(
        rid, plans, executor_for=executor_for, ctx=ctx, pool_limits=pool_limits,
        prepare=_make_preparer(values_in, graph), control=_make_control(values_in, graph),
        emit=emit if hook_list else None, record=log.record,
        retry_default=spec.defaults.retry, timeout_default=spec.defaults.timeout_s,
        model_for=model_for, budget_tokens=spec.budget.max_tokens, preset=preset,
        attempts=attempts,
        exclude=_preset_exclusions(graph, preset or {}), first_seq=first_seq,
        jsonable_events=bool(hook_list), nested_in=nested_in, retry_due=retry_due,
        recorded_cut_short=_recorded_cut_short(prior_events, carried),
        **_recorded_attempts(prior_events, left_open or {}))
    ctx.scheduler = sched
    if prior_usage is not None:
        sched.usage += prior_usage
    if on_scheduler is not None:
        on_scheduler(sched)
    t0 = time.perf_counter()
    started = {"workflow": spec.name, "inputs": values_in, "spec": _spec_data(graph),
               "source": source, "parent_run_id": parent[0] if parent else None,
               "parent_step_id": parent[1] if parent else None,
               "parent_attempt": parent_attempt, "resumed": first_seq > 0,
               "ran_s": prior_s if first_seq > 0 else None,
               "backend": cache.override, "tool_executor": tool_executor,
               **writer_fields()}
    if source is None and parent is None:
        sched.trusted_event(ev.RunStarted, started)
    else:  # given by the caller: validated
        sched.event(ev.RunStarted, **started)
    for cls, fields in carried:
        sched.event(cls, **fields)

    async def finish() -> None:
        if sched.hook_error is None:
            status, output, error = _final(sched, spec, graph, values_in)
            _close_left_open(sched, left_open or {}, cancelled=status == "cancelled")
            sched.trusted_event(ev.RunFinished, {
                "status": status, "output": output, "error": error,
                "usage": event_usage(sched.usage),
                "duration_s": prior_s + time.perf_counter() - t0})
            await sched.flush()
        elif failed_hook and failed_hook[0] > 0:
            await _tell_stopped(sched, hook_list, failed_hook[0], prior_s + time.perf_counter()
                                - t0)
        if own_backends and cache.opened:
            await cache.aclose()

    try:
        await sched.run()
    except BaseException as exc:
        # cancelled from outside or stopped by a hook: still record how the run ended
        if isinstance(exc, anyio.get_cancelled_exc_class() | KeyboardInterrupt):
            sched.cancelled = True  # a cancelled run, which resume continues (not failed)
        with anyio.CancelScope(shield=True):
            await finish()
        if sched.hook_error is not None:
            # the trace could not be written: the run stopped there; say why, plainly
            raise sched.hook_error from None
        raise
    await finish()
    ctx.scheduler = None  # the run is over; no reference cycle left for the GC to find
    finished = log.last_fields()  # run_finished's (not built if nothing reads it)
    used = finished["usage"]
    # the duration recorded (run_finished's), not a later reading of the clock: the
    # trace's write came between, and `ponder show` gives the recorded one
    return RunResult(rid, spec.name, finished["status"], finished["output"], log,
                     Usage(used.prompt_tokens, used.completion_tokens),
                     finished["duration_s"], finished["error"])


async def _tell_stopped(sched: Scheduler, hooks: Sequence[Hook], failed: int,
                        duration_s: float) -> None:
    """After hook ``failed`` raised, give the hooks before it, which have every event up
    to it (a trace store ahead of a hook of the user's), the events queued since and a
    ``run_finished`` of status ``cancelled`` naming the error: the run stopped, and a
    resume continues it. Without it such a store kept the run as running, with no end,
    for as long as the process lived. A hook that fails again is let be: the first
    error is the one raised."""
    error = sched.hook_error
    assert error is not None
    name = getattr(hooks[failed], "__name__", None) or type(hooks[failed]).__name__
    sched.trusted_event(ev.RunFinished, {
        "status": "cancelled", "output": None,
        "error": f"the run stopped: event hook {failed + 1} of {len(hooks)} ({name}) "
                 f"raised {type(error).__name__}: {error}",
        "usage": event_usage(sched.usage),
        "duration_s": duration_s})
    batch = sched.take_pending()
    for hook in hooks[:failed]:
        try:
            await hook(batch)
        except Exception:
            return


#: the step events that say where a step stands (a plan's call or error does not)
_STEP_STANDING = ev.ATTEMPT_ENDS | {"step_started", "step_scheduled", "step_skipped"}


def _recorded_attempts(events: Sequence[Any], left_open: dict[str, tuple[int, Usage, str]]
                       ) -> dict[str, Any]:
    """What the scheduler of a resumed run needs to know of each step's recorded attempts
    (its ``recorded_usage``, ``interrupted`` and ``failed_before``): the tokens their
    events counted (a step that took another's output, ``meta.reused_from``: that
    one's), the attempt the run stopped in (a ``step_started`` with nothing after it),
    with the tokens of it that no event counted (``left_open``'s: a plan step's completed
    calls), and the steps whose latest event is a ``step_failed`` with its error.

    :param events: the run's events of its earlier executions, in order.
    """
    if not events:
        return {}
    usage: dict[str, Usage] = {}
    last: dict[str, Any] = {}
    for e in events:
        kind = e.kind
        if kind not in _STEP_STANDING:
            continue
        last[e.step_id] = e
        if kind in ev.ATTEMPT_ENDS:
            used = e.usage
            if used.prompt_tokens or used.completion_tokens:
                usage[e.step_id] = usage.get(e.step_id, Usage()) + Usage(
                    used.prompt_tokens, used.completion_tokens)
            source = (getattr(e, "meta", None) or {}).get("reused_from")
            if isinstance(source, str) and source in usage:
                # it took that step's output (a resumed fan-out's child, a plan's action),
                # or failed again with its recorded error (a fan-out's child):
                # it counts what that one spent, as its own event does not (the run's
                # total has them once); a step reused again later counts them too
                usage[e.step_id] = usage.get(e.step_id, Usage()) + usage[source]
    interrupted: dict[str, tuple[int, Usage]] = {}
    for sid, e in last.items():
        if e.kind == "step_started":
            open_ = left_open.get(sid)
            cut = open_[1] if open_ is not None and open_[0] == e.attempt else Usage()
            interrupted[sid] = (e.attempt, cut)
    failed = {sid: e.error for sid, e in last.items() if e.kind == "step_failed"}
    return {"recorded_usage": usage, "interrupted": interrupted, "failed_before": failed}


def _recorded_cut_short(events: Sequence[Any],
                        carried: Sequence[tuple[type[ev._Event], dict[str, Any]]]
                        ) -> dict[str, int] | None:
    """How many answers each recorded success stopped at ``max_tokens`` (its
    ``StepOutcome.cut_short``), from the run's earlier events (resume) and the successes
    a fork carries from its parent, so that a step given its recorded output reads as it
    did when it ran (a join counting its fan-out's cut answers, a resumed fan-out its
    reused children's)."""
    found: dict[str, int] = {}
    for e in events:
        if e.kind == "step_succeeded" and e.meta:
            # a step that took another's output (a resumed fan-out's child) has its count
            source = e.meta.get("reused_from")
            n = found.get(source, 0) if isinstance(source, str) else cut_short_of(e.meta)
            if n:
                found[e.step_id] = n
    for cls, fields in carried:
        meta = fields.get("meta")
        if cls is ev.StepSucceeded and isinstance(meta, dict):
            n = cut_short_of(meta)
            if n:
                found[fields["step_id"]] = n
    return found or None


def _close_left_open(sched: Scheduler, left_open: dict[str, tuple[int, Usage, str]],
                     cancelled: bool) -> None:
    """Record as cancelled each step an earlier execution left open that this one did
    not take up under its id (see ``execute``'s ``left_open``). Its attempt's tokens that
    no event counted yet (a plan step's calls) go with it: the run's total has them."""
    known = sched.state.steps
    for sid, (attempt, used, why) in left_open.items():
        if sid in known:
            continue
        reason = ("run cancelled" if attempt else "run cancelled before start") \
            if cancelled else why
        sched.event(ev.StepCancelled, step_id=sid, attempt=attempt, reason=reason,
                    usage=event_usage(used))


def _absolute_source(source: str | None) -> str | None:
    """A workflow file named relative to the working directory, made absolute: resume
    and replay find the workflow's folder (its tools, sub-workflows) from the recorded
    source, whatever directory they are started in. Anything else is kept as it is."""
    if source is None or os.path.isabs(source) or not os.path.isfile(source):
        return source
    return os.path.abspath(source)


#: a run keeps up to this many events as they are; past it, they are folded as they come
_FOLD_AFTER = 1024


class _RunLog:
    """A run's events, folded into the records of ``RunResult.steps`` when first asked
    for (most callers read only the status and output), so that a run does not pay for
    the fold on every event. A long run folds them as they come once it has more than
    ``_FOLD_AFTER`` (the records per step take less memory than the events that make
    them), so what a run keeps stays about the size of its records.

    :param convert: the events were made without JSON-safe copies of step inputs and
        metadata (no hook reads them): the fold makes them.
    :param prior: the run's events of its earlier executions (resume), folded first;
        without them, the steps of ``preset`` are records with their output only.
    """

    def __init__(self, run_id: str, preset: dict[str, Any], attempts: dict[str, int],
                 convert: bool, prior: Sequence[Any] = ()) -> None:
        #: the events not folded yet; with no hooks, some may not be built yet (Deferred)
        self.events: list[ev._Event | Deferred] = []
        self._last: ev._Event | Deferred | None = None
        self._run_id = run_id
        self._preset = preset
        self._attempts = attempts
        self._convert = convert
        self._prior = prior
        self._fold: Any = None

    def record(self, batch: list[ev._Event | Deferred]) -> None:
        self.events.extend(batch)
        self._last = batch[-1]
        if len(self.events) > _FOLD_AFTER:
            self._fold_pending()

    def last_fields(self) -> dict[str, Any]:
        """The fields of the latest event recorded, without building it."""
        last = self._last
        assert last is not None
        return last[1] if type(last) is tuple else last.__dict__

    def _fold_pending(self) -> Any:
        fold = self._fold
        if fold is None:
            from orchestrator.store.fold import RunFold

            fold = self._fold = RunFold(self._run_id)
            for e in self._prior:  # the same fold as the trace store's (ponder show)
                fold.apply(e)
            self._prior = ()
            for sid, output in self._preset.items():  # known from an earlier execution
                if fold.steps.get(sid, {}).get("status") != "succeeded":
                    fold.step(sid).update(status="succeeded", output=output,
                                          attempts=self._attempts.get(sid, 1))
        for e in self.events:
            fold.apply(built(e))
        self.events.clear()
        return fold

    def __call__(self) -> Any:
        """The fold of every event (a RunFold)."""
        fold = self._fold_pending()
        if self._convert:
            for rec in fold.steps.values():
                for key in ("input", "meta"):
                    if key in rec:
                        rec[key] = _jsonable(rec[key])
        return fold


def _graph_plans(graph: CompiledGraph) -> list[StepPlan]:
    """The graph's step plans, dependencies first: made once per graph (a graph is not
    changed after compiling, and nothing changes a plan) and shared by its runs."""
    plans = graph.run_cache.get("plans")
    if plans is None:
        remaining = graph.remaining_critical_path()
        plans = graph.run_cache["plans"] = _topological(
            [StepPlan(n.id, n.kind, n.step, tuple(n.deps), n.pool, remaining[n.id])
             for n in graph.nodes.values()])
    return plans


#: step kinds the scheduler runs itself (``control``), with no executor
_CONTROL_KINDS = frozenset({"map", "branch"})


def _graph_facts(graph: CompiledGraph) -> dict[str, Any]:
    """Facts about the graph's steps that every run needs, found once per graph: the
    kinds of its steps (and of those its maps and plans add), the maps that a join
    reads, the sinks, the model aliases of its LLM steps."""
    facts = graph.run_cache.get("facts")
    if facts is None:
        nodes = graph.nodes.values()
        aliases = {n.step.model for n in nodes if n.kind in ("llm", "sample", "spawn")}
        aliases |= {n.step.step.model for n in nodes
                    if n.kind == "map" and n.step.step.kind == "llm"}
        joined = {n.step.of for n in nodes if n.kind == "join"}
        kinds = {n.kind for n in nodes} | {n.step.step.kind for n in nodes if n.kind == "map"}
        if "plan" in kinds:  # what a planner adds: tool calls, LLM thoughts
            kinds |= {"tool", "llm"}
        facts = graph.run_cache["facts"] = {
            "kinds": kinds,
            "joined_maps": joined,
            # a first_finish or adaptive_vote join starts with its map (no edge from it),
            # yet reads it: the map is no final step
            "sinks": [n for n in graph.nodes if graph.dag.out_degree(n) == 0
                      and n not in joined],
            "aliases": aliases,
        }
    return facts


def _spec_data(graph: CompiledGraph) -> dict[str, Any]:
    """The workflow as data for ``run_started``, dumped once per graph."""
    data = graph.run_cache.get("spec")
    if data is None or data[0] is not graph.spec:
        data = graph.run_cache["spec"] = (graph.spec, spec_to_data(graph.spec))
    return data[1]


def _preset_exclusions(graph: CompiledGraph, preset: dict[str, Any]) -> set[str]:
    """Steps that preset branch decisions (of an earlier execution) did not take."""
    out: set[str] = set()
    for bid, targets in graph.branch_targets.items():
        taken = preset.get(bid)
        if isinstance(taken, dict) and isinstance(taken.get("taken"), list):
            out |= targets - set(taken["taken"])
    return out



def _final(sched: Scheduler, spec: WorkflowSpec, graph: CompiledGraph,
           inputs: dict[str, Any]) -> tuple[str, Any, str | None]:
    if sched.cancelled or not sched.state.done:
        return "cancelled", None, "run cancelled"
    handled: set[str] = getattr(sched.ctx, "handled", set())
    bad = [s for s in sched.state.steps.values()
           if s.status is not Status.SUCCEEDED and s.id not in handled
           and (s.status is Status.FAILED or s.status is Status.CANCELLED
                or (s.status is Status.SKIPPED and not s.branch_skip))]
    if bad:
        first = next((s for s in bad if s.status.value == "failed"), bad[0])
        return "failed", None, (f"step {first.id!r} {first.status.value}: "
                                f"{without_step_id(first.id, first.error)}")
    try:
        return "succeeded", _resolve_outputs(spec, graph, inputs, sched.state.values,
                                              sched.state.branch_skipped), None
    except ReferenceResolutionError as exc:
        return "failed", None, f"outputs: {exc}"


def _topological(plans: list[StepPlan]) -> list[StepPlan]:
    """Order plans so that dependencies come first (file order where possible)."""
    by_id = {p.id: p for p in plans}
    seen: set[str] = set()
    out: list[StepPlan] = []
    for p in plans:
        stack = [(p, False)]
        while stack:
            cur, expanded = stack.pop()
            if cur.id in seen:
                continue
            if expanded:
                seen.add(cur.id)
                out.append(cur)
                continue
            stack.append((cur, True))
            stack.extend((by_id[d], False) for d in reversed(cur.deps) if d not in seen)
    return out


def _pool_limits(graph: CompiledGraph, cache: BackendCache,
                 spec: WorkflowSpec) -> dict[str, int | None]:
    limits: dict[str, int | None] = {"tool": spec.defaults.tool_concurrency, "workflow": None,
                                     "control": None}
    aliases: set[str] = _graph_facts(graph)["aliases"] | set(spec.models)
    for alias in aliases:
        cfg = cache.config(spec, alias)
        if cfg.concurrency is not None:
            limits[f"llm:{alias}"] = cfg.concurrency
            continue
        try:
            default = getattr(cache.get(cfg), "default_concurrency", None)
        except ConfigError:
            default = None  # the backend is missing: its steps fail with that message
        limits[f"llm:{alias}"] = default if isinstance(default, int) else 1
    return limits
