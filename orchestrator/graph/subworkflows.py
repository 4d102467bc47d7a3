"""Check, before a run, what a workflow asks of the sub-workflows it runs.

A ``workflow`` step, a ``map`` body of kind ``workflow`` and a ``spawn`` with a
``workflow`` each run another workflow. Found as the run finds it (a registered name,
else a file relative to the calling workflow's folder), the sub-workflow must load, and
the inputs passed must fit its ``inputs:`` as the run checks them
(:meth:`~orchestrator.spec.models.InputSpec.accept`): no input it does not declare
(when it declares any), every required one, and a literal value of the declared type.
Workflows that run each other unconditionally (``a.yaml`` -> ``b.yaml`` -> ``a.yaml``,
through steps no branch can skip) nest until the engine's nesting limit stops them, so
such a cycle is a problem too; a ``spawn`` (bounded by ``max_depth``) or a call a branch
or an empty map can skip is a recursion that may end, and is left alone. So is a chain
of such calls, with no cycle, deeper than that limit
(:data:`~orchestrator.spec.kinds_fanout.MAX_NESTING_DEPTH` nested runs): the run would
fail at its last call, after the steps before it ran.

A sub-workflow without ``models:`` runs on its caller's models (:func:`inherit_models`):
a step of it may name an alias its caller declares (or is given), and no other.

Loading is the only I/O, through the loader given; each workflow is read once per
:class:`SubworkflowCheck`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import PonderError, Problem, ValidationFailed
from orchestrator.spec.kinds_fanout import MAX_NESTING_DEPTH, SpawnStep
from orchestrator.spec.loader import SourceMap, is_file
from orchestrator.spec.models import BranchStep, InputSpec, MapStep, WorkflowSpec, WorkflowStep
from orchestrator.spec.refs import Ref, iter_refs

PathT = tuple[str | int, ...]

#: a ``workflow:`` reference and the folder it is relative to -> the workflow's spec, its
#: source map (None when it is registered, not a file) and its own folder
#: (:func:`orchestrator.spec.loader.find_workflow` with the registry's workflows)
WorkflowLoader = Callable[[str, Path], tuple[WorkflowSpec, SourceMap | None, Path]]

#: (planner, a plan step's options) -> the steps the planner is known to add
#: (``Registry.planner_known_steps``)
KnownSteps = Callable[[str, dict[str, Any]], list[Any]]

#: what else is wrong with a sub-workflow file (its own validation), by path and the model
#: aliases it inherits (see :func:`inherit_models`)
FileCheck = Callable[[Path, frozenset[str]], list[Problem]]

#: the fields of a step (and of what it holds: a map's body, a join's scorer, a planner's
#: known steps) that name a model alias
_MODEL_FIELDS = ("model", "llm", "joiner_model")


def model_aliases(spec: WorkflowSpec) -> frozenset[str]:
    """The model aliases the steps of ``spec`` name (``model``, a scorer's ``llm``, a
    plan's ``joiner_model``, at any depth of a step: a map body, a plan's options)."""
    return aliases_in([step.model_dump(mode="json", by_alias=True) for step in spec.steps])


def aliases_in(value: Any) -> frozenset[str]:
    """The model aliases named in step definitions as plain data (JSON-shaped, as dumped
    or as recorded in a trace): the fields :func:`model_aliases` reads, at any depth."""
    found: set[str] = set()
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if key in _MODEL_FIELDS and isinstance(inner, str):
                    found.add(inner)
                else:
                    stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return frozenset(found)


def inherited_aliases(child: WorkflowSpec, parent_aliases: frozenset[str]) -> frozenset[str]:
    """The aliases a sub-workflow may name besides its own ``models:``: its caller's
    (``parent_aliases``) when it declares none, else none."""
    return frozenset() if child.models else parent_aliases


def inherit_models(child: WorkflowSpec, parent: WorkflowSpec,
                   parent_given: frozenset[str] = frozenset(),
                   parent_aliases: frozenset[str] | None = None
                   ) -> tuple[WorkflowSpec, frozenset[str]]:
    """A sub-workflow as a run of ``parent`` runs it. One without ``models:`` of its own
    runs on its parent's: it gets them (and its ``default`` is the parent's), and may
    name the aliases the parent's run serves without declaring them (``parent_given``,
    and those the steps of a parent without ``models:`` name: they run on the bundled
    model, as in a run recorded before an undeclared alias was refused). One with
    ``models:`` uses those only.

    :param parent_aliases: ``model_aliases(parent)``, when the caller has it (a run
        starting many sub-workflows reads its steps once, not once per sub-workflow).
    :returns: the spec to compile, and the aliases to give its compile besides.
    """
    if child.models:
        return child, frozenset()
    if parent.models:
        given = parent_given
    else:
        given = parent_given | (model_aliases(parent) if parent_aliases is None
                                else parent_aliases)
    if parent.models:
        child = child.model_copy(update={"models": dict(parent.models)})
    return child, given


@dataclass(frozen=True, slots=True)
class WorkflowCall:
    """One place a workflow runs another.

    :param step_id: the calling step.
    :param at: the path of its ``workflow:`` field.
    :param inputs_at: the path of its ``inputs:``.
    :param inputs: what it passes (for a spawn without ``inputs:``, its default).
    :param given: whether ``inputs:`` is written in the workflow (not a default).
    :param items: a map's items, when ``over`` is a literal list (``${item}`` is one).
    :param item_var: the name of a map's item.
    :param always: whether every run of the caller runs it (no branch, empty map or
        spawn depth can skip it).
    """

    step_id: str
    ref: str
    at: PathT
    inputs_at: PathT
    inputs: dict[str, Any]
    given: bool = True
    items: list[Any] | None = None
    item_var: str = "item"
    always: bool = False


def workflow_calls(spec: WorkflowSpec, known_steps: KnownSteps | None = None
                   ) -> list[WorkflowCall]:
    """Every sub-workflow ``spec``'s steps run, in file order, with those of the steps
    its planners are known to add (``known_steps``: a static plan's ``options.steps``)."""
    conditional = _conditional_steps(spec)
    out: list[WorkflowCall] = []
    for i, step in enumerate(spec.steps):
        out += _calls(("steps", i), step, step.id not in conditional)
        if known_steps is not None and step.kind == "plan":
            for j, inner in enumerate(known_steps(step.planner, step.options)):
                # a plan's steps wait on the plan: none is sure to run
                out += _calls(("steps", i, "options", "steps", j), inner, False)
    return out


def _calls(base: PathT, step: Any, always: bool) -> list[WorkflowCall]:
    out: list[WorkflowCall] = []
    if isinstance(step, WorkflowStep):
        out.append(WorkflowCall(step.id, step.workflow, (*base, "workflow"),
                                (*base, "inputs"), step.inputs, always=always))
    elif isinstance(step, MapStep) and step.step.kind == "workflow" and step.step.workflow:
        items = step.over if isinstance(step.over, list) and not _has_refs(step.over) else None
        out.append(WorkflowCall(step.id, step.step.workflow, (*base, "step", "workflow"),
                                (*base, "step", "inputs"), step.step.inputs,
                                items=items, item_var=step.item_var,
                                always=always and bool(items)))
    elif isinstance(step, SpawnStep) and step.workflow is not None:
        out.append(WorkflowCall(step.id, step.workflow, (*base, "workflow"),
                                (*base, "inputs"), step.inputs,
                                given="inputs" in step.model_fields_set))
    return out


def _conditional_steps(spec: WorkflowSpec) -> set[str]:
    """Steps a branch may skip: its targets and every step that depends on one."""
    from orchestrator.graph.compile import step_dependencies

    targets = {t for s in spec.steps if isinstance(s, BranchStep)
               for t in [*(x for c in s.cases for x in c.then), *s.default]}
    out = set(targets)
    deps = {s.id: step_dependencies(s) for s in spec.steps}
    grew = True
    while grew:
        grew = False
        for sid, d in deps.items():
            if sid not in out and d & out:
                out.add(sid)
                grew = True
    return out


def _has_refs(value: Any) -> bool:
    return next(iter_refs(value), None) is not None


def input_problems(call: WorkflowCall, sub: WorkflowSpec,
                   caller_inputs: dict[str, InputSpec]) -> Iterator[tuple[PathT, str, str]]:
    """What the run would refuse in the inputs ``call`` passes ``sub``, each as (path,
    message, hint), mirroring :func:`orchestrator.runtime.engine.validate_inputs`."""
    who = f"step {call.step_id!r}"
    declared = ", ".join(sub.inputs) or "none"
    if sub.inputs:
        for name in call.inputs:
            if name in sub.inputs:
                continue
            if call.given:
                yield ((*call.inputs_at, name),
                       f"{who} passes input {name!r}, which sub-workflow {call.ref!r} does "
                       "not declare", f"its inputs: {declared}")
            else:
                yield (call.at, f"{who} passes each child the input {name!r} (the default "
                                f"`inputs:` of a spawn), which sub-workflow {call.ref!r} does "
                                "not declare",
                       f"set `inputs:` to what it declares: {declared}")
    for name, decl in sub.inputs.items():
        if name not in call.inputs:
            if decl.is_required:
                yield (call.inputs_at if call.given else call.at,
                       f"{who} does not pass input {name!r} ({decl.type}), which sub-workflow "
                       f"{call.ref!r} requires", "add it under `inputs:`, or give it a "
                                                 f"default in {call.ref}")
            continue
        message = _value_problem(call, name, decl, call.inputs[name], caller_inputs)
        if message is not None:
            yield ((*call.inputs_at, name), f"{who}: sub-workflow {call.ref!r}: {message}",
                   f"give it a value of type {decl.type}" +
                   (" that satisfies its `schema`" if decl.json_schema else ""))


def _value_problem(call: WorkflowCall, name: str, decl: InputSpec, value: Any,
                   caller_inputs: dict[str, InputSpec]) -> str | None:
    """Why the run would refuse ``value`` for input ``name``, when that is known now: a
    literal, a map's literal item, or one of the caller's inputs of another type."""
    refs = list(iter_refs(value))
    if not refs:
        return _accept(decl, name, value)
    if not isinstance(value, str) or len(refs) != 1 or refs[0][1] != value.strip():
        return None  # interpolated into a longer text: a string, read as JSON where it can
    ref = refs[0][0]
    if not isinstance(ref, Ref) or ref.path:
        return None
    if ref.root == call.item_var and call.items is not None:
        for item in call.items:
            message = _accept(decl, name, item)
            if message is not None:
                return f"{message} (an item of the map)"
        return None
    if ref.root == "inputs" and ref.name in caller_inputs:
        given = caller_inputs[ref.name].type
        if given not in ("string", "any") and decl.type != "any" and given != decl.type \
                and not (given == "integer" and decl.type == "number"):
            return (f"input {name!r} must be {decl.type}, got `{value}`, which this "
                    f"workflow declares {given}")
    return None


def _accept(decl: InputSpec, name: str, value: Any) -> str | None:
    try:
        decl.accept(name, value)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class _Link:
    """A call on a chain of sub-workflow calls: ``step_id`` of the workflow in ``file``
    (None: a registered one, ``name``) at ``line``:``column`` runs ``ref``."""

    ref: str
    step_id: str
    name: str
    file: Path | None
    line: int
    column: int

    @staticmethod
    def of(call: WorkflowCall, name: str, smap: SourceMap | None) -> _Link:
        if smap is None:
            return _Link(call.ref, call.step_id, name, None, 0, 0)
        line, column = smap.locate(call.at)
        return _Link(call.ref, call.step_id, name, Path(smap.file), line, column)

    def where(self, base_dir: Path) -> str:
        """Its step's place, its file shown relative to ``base_dir`` below it."""
        if self.file is None:
            return f"workflow {self.name!r}"
        try:
            file = str(self.file.relative_to(base_dir.resolve()))
        except ValueError:
            file = str(self.file)
        return f"{file}:{self.line}:{self.column}" if self.line else file


@dataclass
class SubworkflowCheck:
    """The sub-workflow checks of one validation, with what it has loaded.

    :param load: how a reference is found (see :data:`WorkflowLoader`).
    :param check_file: the problems of a sub-workflow file of its own (its validation),
        reported at the step that runs it; None to check only what a call asks of it.
    """

    load: WorkflowLoader
    check_file: FileCheck | None = None
    known_steps: KnownSteps | None = None
    _loaded: dict[tuple[Path, str], tuple[WorkflowSpec, SourceMap | None, Path] | str] = \
        field(default_factory=dict)
    _checked: dict[tuple[Path, frozenset[str]], list[Problem]] = field(default_factory=dict)
    _checking: set[Path] = field(default_factory=set)
    #: a sub-workflow (its file, or its registered name) -> the longest chain of calls
    #: every run of it makes (see :meth:`_chain_below`)
    _below: dict[Path | str, tuple[_Link, ...]] = field(default_factory=dict)

    def problems(self, spec: WorkflowSpec, smap: SourceMap, base_dir: Path,
                 file: Path | None = None,
                 aliases: frozenset[str] = frozenset()) -> list[Problem]:
        """Every problem of the sub-workflows ``spec`` runs, located in ``smap``.

        :param file: the workflow's own file, so that it is not checked again when it
            runs itself.
        :param aliases: the model aliases ``spec``'s run serves (its ``models:``, those
            given to it): a sub-workflow without ``models:`` may name them.
        """
        if file is not None:
            self._checking.add(file)
        out: list[Problem] = []
        cycle = self._cycle(spec, base_dir, file)
        if cycle is not None:
            start, names = cycle
            out.append(smap.problem(start.at, f"step {start.step_id!r}: workflows run each "
                                              "other without end: " + " -> ".join(names),
                                    "every run nests one deeper until the nesting limit "
                                    "fails it: put the call under a branch that can end "
                                    "it, or use a spawn with max_depth"))
        else:
            out += self._too_deep(spec, smap, base_dir, file)
        for call in workflow_calls(spec, self.known_steps):
            loaded = self._load(call.ref, base_dir)
            if loaded is None:
                continue  # not found: the compiler says so
            if isinstance(loaded, str):
                out.append(smap.problem(call.at, f"step {call.step_id!r}: sub-workflow "
                                                 f"{call.ref!r} is not a valid workflow: "
                                                 f"{loaded}",
                                        f"fix it there; `ponder validate {call.ref}` lists "
                                        "all its problems"))
                continue
            sub, sub_smap, _ = loaded
            for path, message, hint in input_problems(call, sub, spec.inputs):
                out.append(smap.problem(path, message, hint))
            if sub_smap is not None and self.check_file is not None and \
                    (cycle is None or call != cycle[0]):  # the cycle says it all
                own = self._file_problems(Path(sub_smap.file),
                                          inherited_aliases(sub, aliases))
                if own:
                    more = f" (and {len(own) - 1} more)" if len(own) > 1 else ""
                    out.append(smap.problem(call.at, f"step {call.step_id!r}: sub-workflow "
                                                     f"{call.ref!r} has problems: "
                                                     f"{_one_line(own[0], base_dir)}{more}",
                                            f"fix them there; `ponder validate {call.ref}` "
                                            "lists them all"))
        return out

    def _load(self, ref: str, base_dir: Path
              ) -> tuple[WorkflowSpec, SourceMap | None, Path] | str | None:
        """The workflow ``ref`` names, why it cannot be loaded (one line), or None when no
        such file exists (the compiler reports that)."""
        key = (base_dir, ref)
        if key not in self._loaded:
            try:
                self._loaded[key] = self.load(ref, base_dir)
            except ValidationFailed as exc:
                if not is_file(base_dir / ref):
                    return None
                first = exc.problems[0] if exc.problems else None
                self._loaded[key] = _one_line(first, base_dir) if first else str(exc)
            except PonderError as exc:
                self._loaded[key] = str(exc).splitlines()[0] if str(exc) else \
                    type(exc).__name__
        return self._loaded[key]

    def _file_problems(self, path: Path, inherited: frozenset[str]) -> list[Problem]:
        if path in self._checking:
            return []  # being checked (it runs itself, or the workflows run each other)
        key = (path, inherited)
        if key not in self._checked:
            assert self.check_file is not None
            self._checking.add(path)
            try:
                self._checked[key] = self.check_file(path, inherited)
            finally:
                self._checking.discard(path)
        return self._checked[key]

    def _cycle(self, spec: WorkflowSpec, base_dir: Path, file: Path | None
               ) -> tuple[WorkflowCall, list[str]] | None:
        """The first call of ``spec`` that starts a chain of calls every run makes and
        that leads back to ``spec``, with the chain's workflows; None when there is none."""
        if file is None:
            return None
        for call in workflow_calls(spec):
            if not call.always:
                continue
            chain = self._back_to(file, call.ref, base_dir, [file.name], set())
            if chain is not None:
                return call, chain
        return None

    def _back_to(self, target: Path, ref: str, base_dir: Path, shown: list[str],
                 seen: set[tuple[Path, str]]) -> list[str] | None:
        key = (base_dir, ref)
        if key in seen:
            return None
        seen.add(key)
        loaded = self._load(ref, base_dir)
        if loaded is None or isinstance(loaded, str):
            return None
        sub, sub_smap, sub_dir = loaded
        chain = [*shown, ref]
        if sub_smap is not None and Path(sub_smap.file) == target:
            return chain
        for call in workflow_calls(sub):
            if call.always:
                found = self._back_to(target, call.ref, sub_dir, chain, seen)
                if found is not None:
                    return found
        return None


    def _too_deep(self, spec: WorkflowSpec, smap: SourceMap, base_dir: Path,
                  file: Path | None) -> list[Problem]:
        """A problem at each call of ``spec`` that starts a chain of calls every run
        makes nesting runs deeper than the engine allows (the run would fail at the
        chain's call past the limit, after the steps before it ran)."""
        out: list[Problem] = []
        name = file.name if file is not None else smap.file
        root: frozenset[Path | str] = frozenset() if file is None else frozenset({file})
        for call in workflow_calls(spec):
            chain = self._chain(call, name, smap, base_dir, root)
            if len(chain) <= MAX_NESTING_DEPTH:
                continue
            chain = chain[:MAX_NESTING_DEPTH + 1]
            past = chain[-1]  # it runs at depth MAX_NESTING_DEPTH + 1
            names = " -> ".join([name, *(link.ref for link in chain)])
            out.append(smap.problem(
                call.at, f"step {call.step_id!r}: sub-workflows nest deeper than the limit "
                f"of {MAX_NESTING_DEPTH} nested runs: step {past.step_id!r} "
                f"({past.where(base_dir)}) would run {past.ref!r} at nesting depth "
                f"{MAX_NESTING_DEPTH + 1}: {names}",
                "every run fails there, after the steps before it ran: nest fewer "
                "workflows, or put a call under a branch that can skip it"))
        return out

    def _chain(self, call: WorkflowCall, name: str, smap: SourceMap | None, base_dir: Path,
               stack: frozenset[Path | str]) -> tuple[_Link, ...]:
        """The longest chain of calls every run makes that starts with ``call`` (of the
        workflow ``name``, located in ``smap``, its folder ``base_dir``); empty when a
        branch, an empty map or a spawn's depth can skip it, or it cannot be loaded."""
        if not call.always:
            return ()
        loaded = self._load(call.ref, base_dir)
        if loaded is None or isinstance(loaded, str):
            return ()
        sub, sub_smap, sub_dir = loaded
        key: Path | str = Path(sub_smap.file) if sub_smap is not None else call.ref
        if key in stack:
            return ()  # workflows that run each other: said as such
        return (_Link.of(call, name, smap),
                *self._chain_below(key, call.ref, sub, sub_smap, sub_dir, stack | {key}))

    def _chain_below(self, key: Path | str, name: str, spec: WorkflowSpec,
                     smap: SourceMap | None, base_dir: Path,
                     stack: frozenset[Path | str]) -> tuple[_Link, ...]:
        """The longest chain of calls every run of the sub-workflow ``key`` makes
        (computed once per validation; bounded by what the limit needs shown)."""
        if key not in self._below:
            best: tuple[_Link, ...] = ()
            for call in workflow_calls(spec):
                chain = self._chain(call, name, smap, base_dir, stack)
                if len(chain) > len(best):
                    best = chain
                if len(best) > MAX_NESTING_DEPTH:
                    break
            self._below[key] = best
        return self._below[key]


def _one_line(problem: Problem, base_dir: Path) -> str:
    """A problem of another file on one line, its file shown relative to ``base_dir``
    (the calling workflow's folder) when it lies below it."""
    try:
        file = str(Path(problem.file).relative_to(base_dir.resolve()))
    except ValueError:
        file = problem.file
    where = f"{file}:{problem.line}:{problem.column}" if problem.line else file
    return f"{where}: {problem.message}"
