"""Where Ponder finds tools, LLM backends and step executors.

Implementations live in `executors/` (and third-party packages) and are announced
through entry points (`ponder.tools`, `ponder.backends`, `ponder.executors`), so
the core never imports them. A :class:`Registry` is an explicit object: a workflow's
own `tools:` and whatever the SDK registers go into a copy, never into a global.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError

from orchestrator.errors import ConfigError, ToolError, shown
from orchestrator.runtime.contracts import BackendFactory, Executor
from orchestrator.spec.models import ModelConfig
from orchestrator.spec.options import OptionProblem, option_problems


class ConfigProblem(NamedTuple):
    """What a model's config lacks for a run on its backend, where the environment does
    not give it either (see :meth:`Registry.backend_config_problems`).

    :param problem: what is missing (``no model name to send to the server``).
    :param fix: how the environment gives it (``set $PONDER_OPENAI_MODEL=NAME``).
    :param field: the config field that gives it instead, as written (``model: NAME``).
    """

    problem: str
    fix: str
    field: str


@dataclass(frozen=True)
class ToolSpec:
    """A callable exposed to workflows, with a pydantic model of its arguments."""

    name: str
    fn: Callable[..., Any]
    description: str
    args_model: type[BaseModel]
    is_async: bool

    def validate(self, args: dict[str, Any],
                 written: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate arguments, returning the coerced values.

        :param written: the arguments as the step wrote them, before its references were
            resolved: a bad argument that a reference gave names it (``got None, from
            ${steps.find.output}``: the step it came from found nothing).
        :raises ToolError: naming each bad argument.
        """
        try:
            model = self.args_model.model_validate(args)
        except ValidationError as exc:
            parts = []
            for e in exc.errors(include_url=False):
                where = ".".join(str(p) for p in e["loc"])
                # the value itself: a referenced result's type is not in the step's text
                source = (written or {}).get(str(e["loc"][0])) if len(e["loc"]) == 1 else None
                came = f", from {source}" if isinstance(source, str) and "${" in source else ""
                got = "" if e["type"] == "missing" else f" (got {shown(e['input'])}{came})"
                parts.append(f"{f'argument {where}' if where else '(args)'}: {e['msg']}{got}")
            raise ToolError(f"tool {self.name!r}: bad arguments: " + "; ".join(parts)) from None
        return {k: getattr(model, k) for k in self.args_model.model_fields}

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of the arguments (for planners and docs)."""
        return self.args_model.model_json_schema()

    @property
    def arg_names(self) -> list[str]:
        return list(self.args_model.model_fields)


def tool_spec(fn: Callable[..., Any], name: str | None = None, description: str | None = None) -> ToolSpec:
    """Build a ToolSpec from a callable's signature and docstring.

    :raises ConfigError: when a parameter cannot be described (``*args``/``**kwargs``, a
        type hint that does not resolve or that pydantic cannot validate).
    """
    existing = getattr(fn, "__ponder_tool__", None)
    if isinstance(existing, ToolSpec) and name in (None, existing.name):
        return existing
    tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    sig = _signature(fn, tool_name)
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {tool_name!r}: *args/**kwargs cannot be validated")
        if pname.startswith("_") or (pname.startswith("model_") and hasattr(BaseModel, pname)):
            # pydantic takes such a name for itself: no argument could have it (`_x` was
            # 'no argument', `model_dump` an internal error)
            kept = ("a name that starts with '_'" if pname.startswith("_") else
                    f"the name of BaseModel.{pname}")
            raise ConfigError(f"tool {tool_name!r}: a parameter cannot be named {pname!r}: "
                              f"pydantic, which validates a tool's arguments, keeps {kept} "
                              "for itself; rename it")
        ann = param.annotation if param.annotation is not inspect.Parameter.empty else Any
        default = param.default if param.default is not inspect.Parameter.empty else ...
        fields[pname] = (ann, default)
    try:
        with warnings.catch_warnings():
            # `json`, `schema`, `copy`: BaseModel's (deprecated) methods, which a field may
            # shadow; its arguments are read from the instance (see ToolSpec.validate)
            warnings.filterwarnings("ignore", "Field name .* shadows an attribute",
                                    UserWarning)
            model = create_model(
                f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields
            )
        complete = model.__pydantic_complete__
    except PydanticSchemaGenerationError:
        complete = False
    if not complete:  # (pydantic would say so only when the first step calls the tool)
        bad = next((p for p, (ann, _) in fields.items() if not _validatable(ann)), None)
        what = (f"argument {bad!r} has the type {_type_name(fields[bad][0])}, which" if bad
                else "the types of its arguments:")
        raise ConfigError(f"tool {tool_name!r}: {what} pydantic cannot validate from the "
                          "values a workflow gives (use str, int, float, bool, list, dict, "
                          "a pydantic model or a dataclass)")
    doc = description if description is not None else inspect.getdoc(fn) or ""
    return ToolSpec(tool_name, fn, doc.split("\n\n")[0], model, inspect.iscoroutinefunction(fn))


def _signature(fn: Callable[..., Any], tool_name: str) -> inspect.Signature:
    """``fn``'s signature with its type hints as types: a module that has ``from __future__
    import annotations`` (or quotes a hint) writes them as strings, which pydantic would
    look up in pydantic's own namespace, not the tool module's.

    :raises ConfigError: naming the argument whose hint does not resolve (a name imported
        under ``if TYPE_CHECKING:`` only, say), or when Python cannot tell the signature.
    """
    try:
        return inspect.signature(fn, eval_str=True)
    except ValueError as exc:  # a builtin that does not describe its parameters
        raise ConfigError(f"tool {tool_name!r}: Python cannot read its parameters ({exc}); "
                          "wrap it in a function of your own") from None
    except Exception as exc:  # evaluating a hint ran the user's code: NameError, mostly
        failure = exc
    target = inspect.unwrap(fn)
    if not inspect.isroutine(target) and not inspect.isclass(target):
        target = type(target).__call__  # an instance: its __call__'s module has the names
    namespace = getattr(inspect.unwrap(target), "__globals__", {})
    for pname, param in inspect.signature(fn).parameters.items():
        if not isinstance(param.annotation, str):
            continue
        try:  # (evaluated as inspect.signature(eval_str=True) evaluates it)
            eval(param.annotation, namespace)
        except Exception as exc:
            raise ConfigError(
                f"tool {tool_name!r}: the type hint of argument {pname!r} "
                f"({param.annotation}) does not resolve: {type(exc).__name__}: {exc} (import "
                "the types a tool takes when its module runs, not only under TYPE_CHECKING)"
            ) from None
    raise ConfigError(f"tool {tool_name!r}: its type hints do not resolve: "
                      f"{type(failure).__name__}: {failure}") from None


def _validatable(ann: Any) -> bool:
    """Whether pydantic can validate JSON data as the type ``ann``."""
    try:
        create_model("probe", x=(ann, ...))
    except PydanticSchemaGenerationError:
        return False
    return True


def _type_name(ann: Any) -> str:
    return ann.__qualname__ if isinstance(ann, type) else str(ann)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Decorator marking a function as a Ponder tool (``@tool`` or ``@tool(name=...)``)."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        f.__ponder_tool__ = tool_spec(f, name, description)  # type: ignore[attr-defined]
        return f

    return wrap(fn) if fn is not None else wrap


def import_callable(target: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """Import ``module:function``; the workflow's own folder is searched first.

    A module next to the workflow whose name another file's module took already in this
    process (two workflows, each with a ``tools.py``: a parent and its sub-workflow, or
    runs one after the other) is imported under a name of its own (see
    :func:`_import_beside`): importing by name would give the first one's functions.

    :raises ConfigError: naming the target when it cannot be imported (its module is
        missing, or raised while it was imported: a syntax error, say).
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"tool target {target!r} must look like `module:function`")
    top = module_name.split(".")[0]
    local = _beside(base_dir, top) if base_dir is not None else None
    added = False
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
        added = True
    try:
        if local is None or _same_file(sys.modules.get(top), local):
            module = importlib.import_module(module_name)
        if local is not None and not _same_file(sys.modules.get(top), local):
            # the name is another file's (imported before, or found first on sys.path)
            module = _import_beside(module_name, top, local)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for tool {target!r}: {exc}") from None
    except Exception as exc:  # the module's own code failed: the user's to fix
        raise ConfigError(f"importing module {module_name!r} for tool {target!r} failed: "
                          f"{type(exc).__name__}: {exc}") from None
    except SystemExit as exc:  # it ended the command silently, with the module's status
        raise ConfigError(f"importing module {module_name!r} for tool {target!r} failed: "
                          f"the module calls sys.exit({exc.code!r}) as it is imported "
                          "(put a script's code under `if __name__ == \"__main__\":`)"
                          ) from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r} (tool {target!r})")
    if not callable(obj):
        raise ConfigError(f"tool target {target!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _beside(base_dir: Path, top: str) -> Path | None:
    """The file of the module ``top`` in the workflow's folder, if it has one."""
    return next((f for f in (base_dir / f"{top}.py", base_dir / top / "__init__.py")
                 if f.is_file()), None)


def _same_file(module: Any, path: Path) -> bool:
    """Whether ``module`` is not imported yet, or was imported from ``path``."""
    loaded = getattr(module, "__file__", None)
    if module is None:
        return True
    try:
        return loaded is not None and Path(loaded).resolve() == path.resolve()
    except OSError:
        return False


def _import_beside(module_name: str, top: str, local: Path) -> Any:
    """Import ``module_name`` from the module (or package) file ``local``, under a name
    made from its path (``tools__ponder_<hash>``): the plain name is another file's in
    this process. Functions already taken from the other module keep working; ones taken
    from this one keep theirs. (Ray workers cannot import the alias: RayToolExecutor
    sends such a module's functions by value.)"""
    digest = hashlib.sha1(str(local.resolve()).encode()).hexdigest()[:12]
    alias = f"{top}__ponder_{digest}"
    if alias not in sys.modules:
        package = local.name == "__init__.py"
        spec = importlib.util.spec_from_file_location(
            alias, local, submodule_search_locations=[str(local.parent)] if package else None)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {local}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[alias] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[alias]
            raise
    rest = module_name[len(top):]
    return importlib.import_module(alias + rest) if rest else sys.modules[alias]


def find_callable_module(target: str, base_dir: Path | None = None) -> ModuleSpec | None:
    """Check that the module of ``module:function`` exists, without importing anything.

    Validation uses this: importing would run the module's code, and validating a
    workflow someone sent you must not execute it. Whether the function exists is
    checked when the workflow runs (validation reads a source module's text for it).

    :returns: the module's spec; None for a module built into Python.
    :raises ConfigError: naming the target when the module cannot be found.
    """
    from importlib.machinery import PathFinder

    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"tool target {target!r} must look like `module:function`")
    parts = module_name.split(".")
    if parts[0] in sys.builtin_module_names:
        if len(parts) == 1:
            return None
    search: list[str] | None = [str(base_dir), *sys.path] if base_dir is not None else None
    spec = None
    for i, part in enumerate(parts):
        spec = PathFinder.find_spec(part, search)
        if spec is None:
            missing = ".".join(parts[: i + 1])
            raise ConfigError(f"cannot find module {missing!r} for tool {target!r}")
        search = list(spec.submodule_search_locations or [])
    return spec


@functools.cache
def _entry_points(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def _loaded(ep: Any) -> Any:
    """What an installed tool's entry point names; None when it does not load (it is still
    that tool's name: the run reports why it does not load)."""
    try:
        return ep.load()
    except Exception:
        return None


def _described(fn: Callable[..., Any]) -> str:
    """A function as a message names it: ``module.qualname``."""
    return f"{getattr(fn, '__module__', None) or '?'}." \
           f"{getattr(fn, '__qualname__', None) or type(fn).__name__}"


@dataclass
class Registry:
    """Tools, LLM backends and executors available to a run."""

    tools: dict[str, ToolSpec] = field(default_factory=dict)
    backends: dict[str, BackendFactory] = field(default_factory=dict)
    executors: dict[str, Executor] = field(default_factory=dict)
    workflows: dict[str, Any] = field(default_factory=dict)
    #: the names in ``tools`` that a workflow file's ``tools:`` defines (see
    #: :meth:`with_workflow_tools`): a sub-workflow's own ``tools:`` may define them anew
    workflow_tools: frozenset[str] = frozenset()
    #: factories with a ``with_registry`` hook, as bound to this registry (see
    #: :meth:`backend_factory`): one each, so that every check and run sees the same one
    _bound: dict[Any, BackendFactory] = field(default_factory=dict, init=False, repr=False,
                                              compare=False)

    @classmethod
    def default(cls) -> Registry:
        """A fresh registry of everything installed (entry points), loaded lazily."""
        return cls()

    def copy(self) -> Registry:
        return Registry(dict(self.tools), dict(self.backends), dict(self.executors),
                        dict(self.workflows), self.workflow_tools)

    def with_workflow_tools(self, tools: dict[str, ToolSpec]) -> Registry:
        """This registry with a workflow's own ``tools:`` (name -> spec) served over its
        tools, for that workflow's run only: the registry itself is left as it is, so a
        sub-workflow that defines a name anew gets its own function, and its parent (or
        another run) keeps its own."""
        if not tools:
            return self
        scoped = self.copy()
        scoped.tools.update(tools)
        scoped.workflow_tools = self.workflow_tools | frozenset(tools)
        return scoped

    # -- tools ---------------------------------------------------------------
    def tool_names(self) -> set[str]:
        return set(self.tools) | set(_entry_points("ponder.tools"))

    def get_tool(self, name: str) -> ToolSpec:
        """:raises ToolError: for a tool outside the allowlist."""
        if name not in self.tools:
            ep = _entry_points("ponder.tools").get(name)
            if ep is None:
                known = ", ".join(sorted(self.tool_names()))
                raise ToolError(f"unknown tool {shown(name)}; known tools: {known}")
            self.tools[name] = tool_spec(ep.load(), name)
        return self.tools[name]

    def tool_arguments(self, name: str) -> type[BaseModel] | None:
        """The argument model of a tool this registry has or can load (an installed
        entry point), or None: unknown, its entry point does not load here, or tool
        steps run on an executor that takes arguments of its own (see
        :class:`~orchestrator.runtime.contracts.Executor`)."""
        executor = self.executors.get("tool")
        if executor is not None and not getattr(executor, "registry_tool_args", False):
            return None
        try:
            return self.get_tool(name).args_model if name in self.tool_names() else None
        except Exception:  # a broken plugin: its run reports it, validating carries on
            return None

    def builtin_tool(self, name: str) -> str | None:
        """The target (``module:function``) of the installed tool ``name`` (an entry point
        of ``ponder.tools``, such as ``calc``) while it is the one this registry serves
        under that name; None for any other name, or once :meth:`add_tool` replaced it."""
        ep = _entry_points("ponder.tools").get(name)
        if ep is None:
            return None
        spec = self.tools.get(name)
        if spec is not None and spec.fn is not _loaded(ep):
            return None
        return str(ep.value)

    def workflow_tool_problem(self, name: str, fn: Callable[..., Any] | None = None
                              ) -> str | None:
        """Why a workflow's ``tools:`` may not define ``name`` (as ``fn``, when known): it
        is a built-in tool's (see :meth:`builtin_tool`), which the workflow's steps,
        planners' catalogs and other workflows of the run expect, or a tool registered in
        Python as another function (the SDK's ``register_tool``); None when it may. A
        name another workflow file's ``tools:`` defined may be defined anew."""
        builtin = self.builtin_tool(name)
        if builtin is not None:
            return (f"tool {shown(name)} is a built-in tool ({builtin}): a workflow's "
                    "`tools:` cannot replace it")
        taken = self.tools.get(name)
        if (fn is not None and taken is not None and taken.fn is not fn
                and name not in self.workflow_tools):
            return (f"tool {shown(name)} is registered in Python, as {_described(taken.fn)}: "
                    f"a workflow's `tools:` cannot serve {_described(fn)} under its name")
        return None

    def add_tool(self, fn: Callable[..., Any] | ToolSpec, name: str | None = None, *,
                 replace: bool = False) -> ToolSpec:
        """Serve ``fn`` as the tool ``name`` (default: its own name).

        Registering the same function again is a no-op.

        :param replace: serve it in place of the built-in tool, or of another function
            already registered, of that name.
        :raises ConfigError: when ``fn`` is not callable, or when the name is a built-in
            tool's or another function's and ``replace`` is false (a workflow's steps
            would silently call one of the two).
        """
        if not isinstance(fn, ToolSpec) and not callable(fn):
            raise ConfigError(f"a tool must be a callable or a ToolSpec, not "
                              f"{type(fn).__name__} {shown(fn)}")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"a tool's name must be a string, not {type(name).__name__} "
                              f"{shown(name)}")
        spec = fn if isinstance(fn, ToolSpec) else tool_spec(fn, name)
        key = name or spec.name
        taken = self.tools.get(key)
        builtin = self.builtin_tool(key)
        if not replace and builtin is not None and spec.fn is not _loaded(
                _entry_points("ponder.tools")[key]):
            raise ConfigError(
                f"tool {shown(key)} is a built-in tool ({builtin}): register yours under "
                "another name, or pass replace=True to serve it in place of the built-in")
        # `!=`, not `is not`: a bound method (obj.method) is a new object at each access,
        # equal to the others of its object and function
        if not replace and builtin is None and taken is not None and taken.fn != spec.fn:
            raise ConfigError(
                f"tool {shown(key)} is already registered, as {_described(taken.fn)}: "
                f"register {_described(spec.fn)} under another name, or pass replace=True "
                "to serve it instead")
        self.tools[key] = spec
        return spec

    # -- LLM backends --------------------------------------------------------
    def backend_names(self) -> set[str]:
        return set(self.backends) | set(_entry_points("ponder.backends"))

    def backend_factory(self, name: str) -> BackendFactory:
        """The factory of the backend ``name``: one registered on this registry (the SDK's
        ``register_backend``), else an installed one; as :meth:`bound_factory` gives it.

        :raises ConfigError: for a backend that is unknown or not installed.
        """
        if name not in self.backends:
            ep = _entry_points("ponder.backends").get(name)
            if ep is None:
                known = ", ".join(sorted(self.backend_names()))
                raise ConfigError(f"unknown LLM backend {name!r}; installed: {known}")
            try:
                self.backends[name] = ep.load()
            except ImportError as exc:
                raise ConfigError(f"LLM backend {name!r} is not installed: {exc}") from None
        return self.bound_factory(self.backends[name])

    def bound_factory(self, factory: BackendFactory) -> BackendFactory:
        """``factory`` as this registry serves it. A backend that builds or checks other
        backends by name (the ``pool`` backend: its members) has a classmethod
        ``with_registry(registry)`` returning a factory that finds them in ``registry``;
        it is given this one, so that a backend registered here only (the SDK's
        ``register_backend``) is found, checked and built like an installed one. Any
        other factory is served as it is."""
        bind = getattr(factory, "with_registry", None)
        if not callable(bind):
            return factory
        try:
            bound = self._bound.get(factory)
        except TypeError:  # an unhashable factory: bound anew each time
            return bind(self)  # type: ignore[no-any-return]
        if bound is None:
            bound = self._bound[factory] = bind(self)
        return bound

    def backend_option_problems(self, name: str, options: dict[str, Any]
                                ) -> list[OptionProblem]:
        """What the backend ``name`` finds wrong with a model's ``options:`` (each at its
        path inside them): its ``option_problems(options)`` classmethod's, when it has one
        (a pool checks its members too), else a check against its ``options_model`` (a
        pydantic model, as a class attribute); none for a backend that has neither or
        does not load, which the run reports."""
        try:
            factory = self.backend_factory(name)
        except ConfigError:
            return []
        check = getattr(factory, "option_problems", None)
        if callable(check):
            return list(check(options))
        model = getattr(factory, "options_model", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        return option_problems(model, options, f"{name} backend")

    def backend_config_problems(self, config: ModelConfig,
                                env: Mapping[str, str] | None = None) -> list[ConfigProblem]:
        """What a model's config (as the run uses it) lacks for its backend to serve it in
        the environment ``env`` (default: this process's): its backend's
        ``config_problems(config, env)`` classmethod's, when it has one (the ``openai``
        backend: no model name, no server and no key; the ``pool`` backend: its
        members'); none for a backend without it or that does not load, which the run
        reports. Asked before a run starts, so that a run is refused with every problem
        instead of failing each of its LLM steps with the first."""
        try:
            factory = self.backend_factory(config.backend)
        except ConfigError:
            return []
        check = getattr(factory, "config_problems", None)
        return (list(check(config, os.environ if env is None else env)) if callable(check)
                else [])

    # -- planners -------------------------------------------------------------
    def planner_names(self) -> set[str]:
        """Planners installed (entry point group ``ponder.planners``)."""
        return set(_entry_points("ponder.planners"))

    def planner_option_problems(self, name: str, options: dict[str, Any]
                                ) -> list[tuple[tuple[str | int, ...], str]]:
        """What the planner ``name`` finds wrong with a plan step's ``options:`` (each at
        its path inside them), when it checks them before a run (an ``option_problems``
        classmethod); none for an unknown planner or one that does not load, which the
        compiler and the run report on their own."""
        check = self._planner_hook(name, "option_problems")
        return list(check(options)) if check is not None else []

    def planner_known_steps(self, name: str, options: dict[str, Any]) -> list[Any]:
        """The steps the planner ``name`` adds whatever its model writes (a ``static``
        plan's), from a ``known_steps`` classmethod, so that compiling the workflow checks
        them; none for other planners, and for options with problems."""
        known = self._planner_hook(name, "known_steps")
        return list(known(options)) if known is not None else []

    @classmethod
    def planner_recorded_options(cls, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """A plan step's ``options:`` as a run recorded them, read as that run read them,
        from a ``recorded_options`` classmethod (a ``static`` plan's steps: a quoted number
        Ponder read as a number before it refused one); unchanged for other planners."""
        read = cls._planner_hook(name, "recorded_options")
        return dict(read(options)) if read is not None else options

    def planner_models_used(self, step: Any) -> set[str] | None:
        """The model aliases that the planner of the plan step ``step`` calls itself
        (its plan, its joiner), from a ``models_used`` classmethod; None for a planner
        without it, unknown, or that does not load: then each of the step's models may
        be called. (The steps a plan adds name their own models.)"""
        used = self._planner_hook(step.planner, "models_used")
        return set(used(step)) if used is not None else None

    @staticmethod
    def _planner_hook(name: str, attr: str) -> Callable[..., Any] | None:
        """The classmethod ``attr`` of the installed planner ``name``; None when there is
        no such planner, it does not load, or it has no such method."""
        ep = _entry_points("ponder.planners").get(name)
        if ep is None:
            return None
        try:
            hook = getattr(ep.load(), attr, None)
        except (ImportError, AttributeError):
            return None
        return hook if callable(hook) else None

    # -- step executors ------------------------------------------------------
    def executor(self, kind: str) -> Executor:
        """:raises ConfigError: when no executor handles this step kind."""
        if kind not in self.executors:
            ep = _entry_points("ponder.executors").get(kind)
            if ep is None:
                raise ConfigError(f"no executor for step kind {shown(kind)}")
            self.executors[kind] = ep.load()()
        return self.executors[kind]
