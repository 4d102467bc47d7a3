"""The tools a planner may call: names, descriptions, argument schemas, and binding of
a planned call's arguments to them (pure, no I/O)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.errors import PonderError
from orchestrator.runtime.registry import Registry, ToolSpec
from planners.errors import PlannerConfigError


@dataclass(frozen=True, slots=True)
class ToolParam:
    """One argument of a tool."""

    name: str
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A tool as a planner sees it.

    :param model: the pydantic model of its arguments (``None`` for a tool known by name
        only, whose arguments are not checked).
    """

    name: str
    description: str
    params: tuple[ToolParam, ...]
    model: type[BaseModel] | None = None

    @classmethod
    def from_spec(cls, spec: ToolSpec) -> ToolInfo:
        """The planner's view of a registered tool (cached: schemas are costly to build)."""
        return _info(spec)

    @classmethod
    def _build(cls, spec: ToolSpec) -> ToolInfo:
        schema = spec.json_schema()
        props = schema.get("properties", {})
        params = tuple(
            ToolParam(name, field_info.is_required(), props.get(name, {}))
            for name, field_info in spec.args_model.model_fields.items())
        return cls(spec.name, spec.description, params, spec.args_model)

    @property
    def arg_names(self) -> list[str]:
        return [p.name for p in self.params]

    def signature(self) -> str:
        """``name(a: string, b: integer = 1, c: string (optional))``, for prompts: an
        optional argument shows its default when it has one a plan could write."""
        parts = []
        for p in self.params:
            text = f"{p.name}: {_type_name(p.schema)}"
            if not p.required:
                default = _shown_default(p.schema)
                text += f" = {default}" if default is not None else " (optional)"
            parts.append(text)
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class BindError(Exception):
    """A planned call's arguments do not fit the tool.

    :param code: ``unknown_tool`` or ``bad_args``.
    """

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ToolCatalog:
    """The tools of one plan step: the allowlist, each with its argument schema.

    :param open: accept any tool name (arguments of unknown tools are not checked);
        used by ``ponder plan parse`` without a workflow.
    """

    tools: Mapping[str, ToolInfo] = field(default_factory=dict)
    open: bool = False

    @classmethod
    def from_registry(cls, registry: Registry, allow: Sequence[str] = ()) -> ToolCatalog:
        """The tools of ``allow`` (every known tool when empty).

        :raises PlannerConfigError: when ``allow`` names a tool the registry does not have.
        """
        names = list(allow) or sorted(registry.tool_names())
        tools: dict[str, ToolInfo] = {}
        for name in names:
            try:
                tools[name] = ToolInfo.from_spec(registry.get_tool(name))
            except PonderError as exc:
                raise PlannerConfigError(f"plan `tools:` names {name!r}: {exc}") from None
        return cls(tools)

    @classmethod
    def of(cls, specs: Iterable[ToolSpec]) -> ToolCatalog:
        return cls({s.name: ToolInfo.from_spec(s) for s in specs})

    def names(self) -> list[str]:
        return list(self.tools)

    def describe(self) -> str:
        """One line per tool: signature and description (for planner prompts)."""
        lines = []
        for info in self.tools.values():
            desc = " ".join(info.description.split())
            lines.append(f"- {info.signature()}" + (f": {desc}" if desc else ""))
        return "\n".join(lines)

    def bind(self, tool: str, positional: Sequence[Any], keywords: Mapping[str, Any],
             holds_ref: Callable[[Any], bool] = lambda value: False) -> dict[str, Any]:
        """Map a planned call's arguments to the tool's parameters and check literal values.

        A value that holds a reference is checked only where its type is known without
        the referenced result (a string with a reference inside is a string).

        :param holds_ref: whether a value holds a reference to another action's result.
        :returns: arguments by parameter name.
        :raises BindError: ``unknown_tool`` for a tool outside the allowlist, ``bad_args``
            for too many, unknown, repeated, missing or mistyped arguments.
        """
        info = self.tools.get(tool)
        if info is None:
            if self.open:
                return {**{f"arg{i}": v for i, v in enumerate(positional)}, **keywords}
            allowed = ", ".join(self.tools) or "none"
            raise BindError("unknown_tool", f"tool {tool!r} is not allowed here "
                                            f"(allowed: {allowed})")
        names = info.arg_names
        # every problem of the call, not only the first: one repair can fix them all
        problems: list[str] = []
        if len(positional) > len(names):
            problems.append(f"{tool}() takes at most {len(names)} argument"
                            f"{'s' if len(names) != 1 else ''} ({', '.join(names) or 'none'}), "
                            f"got {len(positional)}")
        bound = dict(zip(names, positional, strict=False))
        for key, value in keywords.items():
            if key not in names:
                problems.append(f"{tool}() has no argument {key!r} "
                                f"(arguments: {', '.join(names) or 'none'})")
            elif key in bound:
                problems.append(f"{tool}() got argument {key!r} twice")
            else:
                bound[key] = value
        missing = [p.name for p in info.params if p.required and p.name not in bound]
        if missing:
            problems.append(f"{tool}() is missing argument"
                            f"{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        if info.model is not None:
            mistyped = self._type_problems(info, bound, holds_ref)
            if mistyped:
                problems.append(f"{info.name}(): " + "; ".join(mistyped))
        if problems:
            raise BindError("bad_args", "; ".join(problems))
        return bound

    @staticmethod
    def _type_problems(info: ToolInfo, bound: dict[str, Any],
                       holds_ref: Callable[[Any], bool]) -> list[str]:
        """What is wrong with the types of the ``bound`` values (a missing one is not)."""
        # a string with a reference inside is still a string; other values with references
        # are only known once the referenced actions have run
        checkable = {k: v for k, v in bound.items() if isinstance(v, str) or not holds_ref(v)}
        assert info.model is not None
        try:
            info.model.model_validate(checkable)
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                if err["type"] == "missing":
                    continue
                where = ".".join(str(p) for p in err["loc"]) or "(args)"
                got = json.dumps(err.get("input"), default=str)
                problems.append(f"argument {where}: {err['msg'].lower()} (got {got[:60]})")
            return problems
        return []


@functools.lru_cache(maxsize=1024)
def _info(spec: ToolSpec) -> ToolInfo:
    return ToolInfo._build(spec)


def _shown_default(schema: Mapping[str, Any]) -> str | None:
    """A parameter's default as a plan writes it (``1``, ``"F"``, ``null``), or None when
    it has none or a long one."""
    if "default" not in schema:
        return None
    try:
        text = json.dumps(schema["default"], ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= 40 else None


def _type_name(schema: Mapping[str, Any]) -> str:
    if "type" in schema:
        t = schema["type"]
        return "|".join(t) if isinstance(t, list) else str(t)
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        return "|".join(_type_name(o) for o in options if isinstance(o, Mapping))
    return "any"
