"""Report every problem of a workflow file at once: YAML, schema, and graph checks.

When some steps do not validate, the others are still compiled so that reference,
tool, template and cycle problems are reported in the same pass.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from orchestrator.errors import ConfigError, Problem, ValidationFailed
from orchestrator.graph.allowlist import registry_loader
from orchestrator.graph.compile import compile_workflow
from orchestrator.graph.subworkflows import SubworkflowCheck
from orchestrator.runtime.registry import Registry, find_callable_module
from orchestrator.spec.base import BOOL_NOT_NUMBER, FIELD_NOT_USED, STRING_NOT_NUMBER
from orchestrator.spec.loader import (
    SourceMap,
    find_workflow,
    model_config_problem,
    parse_yaml,
    pydantic_problems,
)
from orchestrator.spec.models import LLMStep, MapStep, ModelConfig, Step, WorkflowSpec

_STEP: TypeAdapter[Any] = TypeAdapter(Step)
_STEPS: TypeAdapter[list[Any]] = TypeAdapter(list[Any])


_Partial = tuple[WorkflowSpec | None, list[Problem], set[tuple[str, str]]]


def _partial(data: dict[str, Any], smap: SourceMap) -> _Partial:
    """Validate what can be validated; steps that fail become placeholders, and so do bad
    entries of the top-level fields (see :func:`_repaired_top`).

    :returns: the workflow (``None`` when its steps cannot be checked), the problems, and
        the ``("models" | "tools", name)`` entries that are placeholders.
    """
    problems: list[Problem] = []
    replaced: set[tuple[str, str]] = set()
    taken = model_config_problem(data, smap)
    if taken is not None:
        return None, [taken], replaced
    raw_steps = data.get("steps")
    if "steps" in data and not isinstance(raw_steps, list):
        # the loader's message and hint (`ponder run`); without steps, a graph check would
        # only report each reference to a step as unknown
        try:
            _STEPS.validate_python(raw_steps)
        except ValidationError as exc:
            problems += pydantic_problems(exc, raw_steps, smap, prefix=("steps",))
        return None, problems, replaced
    steps_in: list[Any] = raw_steps if isinstance(raw_steps, list) else []
    top = {k: v for k, v in data.items() if k != "steps"}
    try:
        spec = WorkflowSpec.model_validate(top)
    except ValidationError as exc:
        problems += pydantic_problems(exc, top, smap)
        repaired = _repaired_top(top, exc, replaced)
        if repaired is None:
            return None, problems, replaced
        try:
            spec = WorkflowSpec.model_validate(repaired)
        except ValidationError:
            return None, problems, replaced
    for i, raw in enumerate(steps_in):
        try:
            spec.steps.append(_STEP.validate_python(raw))
        except ValidationError as exc:
            problems += pydantic_problems(exc, raw, smap, prefix=("steps", i))
            cleaned = _without_unknown_fields(raw, exc)
            if cleaned is not None:
                spec.steps.append(cleaned)  # still check its references, tool, template
                continue
            sid = raw.get("id") if isinstance(raw, dict) else None
            # a placeholder keeps the id known, so that references to it are not reported
            # twice, and the steps after it at their own index (located at their lines); an
            # id that is not a string gets one no reference can name
            spec.steps.append(LLMStep.model_construct(
                id=sid if isinstance(sid, str) and sid else f"<step {i}>", kind="llm",
                prompt="", after=[], model="default"))
    return spec, problems, replaced


_PLACEHOLDERS: dict[str, Any] = {
    # a bad input stays known, of any type, so that references to it are not reported
    "inputs": {"type": "any"},
    # a bad model or tool stays known to the steps that name it; its backend and module
    # are not checked (the entry is in _partial's replaced)
    "models": {},
    "tools": "placeholder:placeholder",
}
_DROPPABLE = frozenset({"version", "description", "outputs", "defaults", "budget"})
"""Top-level fields whose loss hides nothing from the checks of the steps."""


def _repaired_top(top: dict[str, Any], exc: ValidationError,
                  replaced: set[tuple[str, str]]) -> dict[str, Any] | None:
    """The workflow's top-level fields with each bad one made harmless, so that its steps
    are still checked: an unknown or droppable field is dropped, a bad `name:` named, a
    bad entry of `inputs:`, `models:` or `tools:` replaced by a placeholder. ``None`` when
    that is not safe: a whole `inputs:`, `models:` or `tools:` that is not a mapping would
    make every reference to one of its entries a problem too.

    :param replaced: gets the ``(field, name)`` of each placeholder.
    """
    repaired = dict(top)
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        field = loc[0] if loc else None
        if not isinstance(field, str):
            return None
        if field in _PLACEHOLDERS and len(loc) >= 2 and isinstance(repaired.get(field), dict):
            repaired[field] = {**repaired[field], loc[1]: _PLACEHOLDERS[field]}
            replaced.add((field, str(loc[1])))
        elif field == "name":
            repaired["name"] = "workflow"
        elif field in _DROPPABLE or field not in WorkflowSpec.model_fields:
            repaired.pop(field, None)
        else:
            return None
    return repaired


#: errors that leave the rest of a step worth checking once their field is dropped
_DROPPABLE_ERRORS = frozenset({"extra_forbidden", BOOL_NOT_NUMBER, STRING_NOT_NUMBER,
                               FIELD_NOT_USED})


def _without_unknown_fields(raw: Any, exc: ValidationError) -> Any:
    """The step with its unknown top-level fields, those holding a boolean or a string
    where a number belongs and those its kind does not use, dropped, if that is all that
    was wrong."""
    errs = exc.errors(include_url=False)
    if not isinstance(raw, dict) or any(
            e["type"] not in _DROPPABLE_ERRORS or len(e["loc"]) < 2
            or (e["type"] == "extra_forbidden" and len(e["loc"]) != 2) for e in errs):
        return None
    unknown = {e["loc"][1] for e in errs}
    try:
        return _STEP.validate_python({k: v for k, v in raw.items() if k not in unknown})
    except ValidationError:
        return None


@dataclass(frozen=True)
class ModelOverrides:
    """What a run's command line changes of the models (``ponder run --backend B``,
    ``--model NAME=FILE``): the models checked are the ones the run uses.

    :param backend: every model runs on this backend (see :func:`run_model`), in the
        sub-workflows too.
    :param replaced: aliases of the workflow whose config is replaced (its sub-workflows
        without ``models:`` run on them too, not those with); the caller checks the
        replacements (:func:`model_problems`).
    """

    backend: str | None = None
    replaced: frozenset[str] = frozenset()


def run_model(config: ModelConfig, backend: str | None) -> ModelConfig:
    """The config a run under ``--backend`` uses for a model: a model on another backend
    runs on ``backend`` without its options (they were written for its own backend: a
    local model's ``n_ctx`` under ``--backend simulated``); one already on it keeps them."""
    if backend is None or config.backend == backend:
        return config
    return config.model_copy(update={"backend": backend, "options": {}})


def model_problems(alias: str, config: ModelConfig, registry: Registry
                   ) -> list[tuple[tuple[str | int, ...], str, str]]:
    """What is wrong with one model's config: its backend is not installed (unknown, or
    lacking the extra it needs: its ``missing_extra(config)`` classmethod says), the
    backend refuses its ``options:``, or its other fields (its ``field_problems(config)``
    classmethod's: the ``openai`` backend's ``base_url`` that is not an http(s) URL, the
    ``local`` backend's ``model_path`` that is not a file). Each is (path inside the
    config, message, hint).

    A pool's members are not asked for their extras: a member that cannot run on this
    machine is left out at run time (docs/engines.md, "Pools")."""
    installed = registry.backend_names()
    if config.backend not in installed:
        return [(("backend",), f"model {alias!r}: unknown LLM backend {config.backend!r}",
                 "installed backends: " + ", ".join(sorted(installed)))]
    problems: list[tuple[tuple[str | int, ...], str, str]] = []
    try:
        check = getattr(registry.backend_factory(config.backend), "missing_extra", None)
    except ConfigError as exc:  # its module does not import
        problems.append((("backend",), f"model {alias!r}: {exc}", ""))
        check = None
    missing = check(config) if callable(check) else None
    if missing:
        problems.append((("backend",), f"model {alias!r}: {missing}",
                         "or run it with --backend simulated, which needs no model"))
    problems += [(("options", *where), f"model {alias!r}: {message}", "")
                 for where, message in registry.backend_option_problems(config.backend,
                                                                        config.options)]
    problems += [(where, f"model {alias!r}: {message}", hint)
                 for where, message, hint in field_problems(config, registry)]
    return problems


def field_problems(config: ModelConfig, registry: Registry
                   ) -> list[tuple[tuple[str | int, ...], str, str]]:
    """What a model's backend finds wrong with the config's own fields whatever the
    environment (its ``field_problems(config)`` classmethod's, when it has one), each as
    (path inside the config, message, hint); none for a backend that does not load."""
    try:
        check = getattr(registry.backend_factory(config.backend), "field_problems", None)
    except ConfigError:
        return []
    return list(check(config)) if callable(check) else []


#: the hint of a `tools:` entry whose function validate cannot find
_CHECK_TARGET = "check the module path and function name"


def _missing_function(target: str, spec: ModuleSpec | None) -> tuple[str, str] | None:
    """What ``ponder run`` would say of a ``module:function`` whose module holds no such
    name, or does not compile, with a hint; found by reading the module's source, never
    by importing it (importing runs the module's code: validating a workflow someone
    sent must not). None when the name is there, or when reading cannot tell: a module
    with no source (built in, compiled), one that makes names at run time (a module
    ``__getattr__``, ``import *``, ``globals()``), or a package's submodule of that
    name."""
    origin = getattr(spec, "origin", None)
    if spec is None or not origin or not origin.endswith(".py"):
        return None
    module_name, _, attr = target.partition(":")
    try:
        tree = ast.parse(Path(origin).read_bytes(), filename=origin)
    except SyntaxError as exc:  # as the run says it (its import fails the same way)
        return (f"importing module {module_name!r} for tool {target!r} failed: "
                f"SyntaxError: {exc.msg} ({Path(origin).name}, line {exc.lineno})",
                "fix the module's syntax at that line")
    except (OSError, ValueError):
        return None  # the run reports why it does not import
    names = _module_names(tree)
    if names is None:
        return None
    first = attr.split(".")[0]
    if first in names:
        return None
    for folder in spec.submodule_search_locations or ():
        if (Path(folder) / f"{first}.py").exists() or (Path(folder) / first).is_dir():
            return None  # a submodule: an attribute once something imports it
    return f"module {module_name!r} has no attribute {attr!r} (tool {target!r})", _CHECK_TARGET


def _module_names(tree: ast.Module) -> set[str] | None:
    """The names a module's top level binds (defs, classes, assignments, imports, in
    ``if``/``try`` blocks too); None when it may bind others that reading cannot see."""
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            if node.name == "__getattr__":
                return None
            stack.extend(node.decorator_list)
            continue  # its body binds names of its own scope
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Name):
            if node.id in {"globals", "vars", "exec", "setattr", "__dict__"}:
                return None
            if not isinstance(node.ctx, ast.Load):
                names.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return None
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        if not isinstance(node, ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))
    return names


def validate_text(text: str, file: str, registry: Registry | None = None,
                  base_dir: Path | None = None) -> list[Problem]:
    """Every problem of a workflow document, sorted by position (the sub-workflows it
    runs included, see :mod:`orchestrator.graph.subworkflows`)."""
    return _validate(text, file, registry, base_dir, None, None, ModelOverrides())


def _validate(text: str, file: str, registry: Registry | None, base_dir: Path | None,
              path: Path | None, subs: SubworkflowCheck | None,
              overrides: ModelOverrides, inherited: frozenset[str] = frozenset()
              ) -> list[Problem]:
    """:param path: the document's file, resolved (None for text of no file).
    :param subs: the sub-workflow checks of the validation this one is part of.
    :param overrides: the run's changes to the models (none for ``ponder validate``).
    :param inherited: the model aliases of the workflow that runs this one, when this
        one declares no ``models:`` (see :func:`~orchestrator.graph.subworkflows.
        inherit_models`): its steps may name them, and they are checked there."""
    data, smap, problems = parse_yaml(text, file)
    if data is None:
        return problems
    if not isinstance(data, dict):
        return [*problems, smap.problem((), "a workflow must be a mapping with `name:` and `steps:`")]
    spec, more, replaced = _partial(data, smap)
    problems += more
    if spec is not None:
        reg = registry or Registry.default()
        problems += _model_problems(spec, smap, reg, overrides, replaced, inherited)
        for name, target in spec.tools.items():
            if ("tools", name) in replaced:
                continue
            clash = reg.workflow_tool_problem(name)
            if clash is not None:
                problems.append(smap.problem(("tools", name), clash, "give yours another name"))
                continue
            try:  # found, not imported: validating must not run the workflow's code
                missing = _missing_function(target, find_callable_module(target, base_dir))
            except ConfigError as exc:
                missing = str(exc), _CHECK_TARGET
            if missing is not None:
                problems.append(smap.problem(("tools", name), f"tool {name!r}: {missing[0]}",
                                             missing[1]))
        try:
            compile_workflow(spec, smap, tool_names=reg.tool_names(),
                             base_dir=base_dir or Path("."), workflow_names=set(reg.workflows),
                             planner_names=reg.planner_names(),
                             planner_options=reg.planner_option_problems,
                             planner_steps=reg.planner_known_steps,
                             load_workflow=registry_loader(reg.workflows),
                             # a workflow's own tools are not imported to validate
                             tool_arguments=lambda name: None if name in spec.tools
                             else reg.tool_arguments(name),
                             # --model NAME=FILE serves NAME, declared or not, and a
                             # sub-workflow without models: runs on its caller's
                             models_given=overrides.replaced | inherited)
        except ValidationFailed as exc:
            problems += exc.problems
        if subs is None:
            workflows = reg.workflows
            subs = SubworkflowCheck(lambda ref, folder: find_workflow(ref, folder, workflows),
                                    known_steps=reg.planner_known_steps)
            # --model replaces models of this workflow only; --backend applies to all
            nested = ModelOverrides(overrides.backend)
            subs.check_file = lambda sub, aliases: _validate_file(sub, reg, subs, nested,
                                                                  aliases)
        problems += subs.problems(spec, smap, base_dir or Path("."), path,
                                  frozenset(spec.models) | overrides.replaced | inherited)
    unique = {(p.line, p.column, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: (p.line, p.column))


def _model_problems(spec: WorkflowSpec, smap: SourceMap, reg: Registry,
                    overrides: ModelOverrides, replaced: set[tuple[str, str]],
                    inherited: frozenset[str] = frozenset()) -> list[Problem]:
    """Each model the run uses has its backend installed, which takes its ``options:``
    (checked here, not when a run compiles: ``--backend`` and ``--model`` may replace what
    the file says, see :class:`ModelOverrides`). A sub-workflow's inherited ``default``
    is its caller's, checked there."""
    problems: list[Problem] = []
    for name, config in spec.models.items():
        if name in overrides.replaced or ("models", name) in replaced:
            continue
        for where, message, hint in model_problems(name, run_model(config, overrides.backend),
                                                   reg):
            problems.append(smap.problem(("models", name, *where), message, hint))
    first = _first_default_user(spec)
    if not spec.models and "default" not in overrides.replaced | inherited and \
            first is not None:
        # no `models:`: the step runs on the bundled model (ModelConfig()), located at it
        for _, message, hint in model_problems("default", run_model(ModelConfig(),
                                                                    overrides.backend), reg):
            message = message.replace("model 'default':", "model 'default' (the bundled "
                                      "model: the workflow declares no `models:`):", 1)
            problems.append(smap.problem(("steps", first), message, hint))
    return problems


def _first_default_user(spec: WorkflowSpec) -> int | None:
    """The index of the first step that runs on the model ``default`` (an LLM step's,
    a map's LLM body's, a plan's, spawn's or sample's ``model``, a join scorer's ``llm``)."""
    for i, step in enumerate(spec.steps):
        models = [getattr(step, "model", None)] if step.kind in ("llm", "plan", "spawn",
                                                                  "sample") else []
        if isinstance(step, MapStep) and step.step.kind == "llm":
            models.append(step.step.model)
        if step.kind == "join":
            models += [s.llm for s in (step.scorer, step.check) if s is not None]
        if "default" in models:
            return i
    return None


def validate_file(path: str | Path, registry: Registry | None = None, *,
                  overrides: ModelOverrides | None = None) -> list[Problem]:
    """Every problem of a workflow file (an unreadable file is one problem).

    :param overrides: check the models as a run with these command-line changes uses
        them (``ponder run``); by default as the files say.
    """
    return _validate_file(path, registry, None, overrides or ModelOverrides())


def _validate_file(path: str | Path, registry: Registry | None,
                   subs: SubworkflowCheck | None, overrides: ModelOverrides,
                   inherited: frozenset[str] = frozenset()) -> list[Problem]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except IsADirectoryError:
        return [Problem(f"cannot read {path}: it is a folder", "name the workflow's YAML "
                        f"file (such as {Path(path) / 'NAME.yaml'})", str(path))]
    except OSError as exc:
        return [Problem(f"cannot read {path}: {exc.strerror}", "check the path", str(path))]
    return _validate(text, str(path), registry, p.resolve().parent, p.resolve(), subs,
                     overrides, inherited)
