"""Prompt templates: Jinja2 in its immutable sandbox, never plain string formatting.

`${steps.a.output}` in a template source is rewritten to `{{ steps.a.output }}` before
compiling, so both spellings work. Values are never re-parsed as templates, so an input
that contains `{{ ... }}` stays text (no template injection).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ReferenceResolutionError
from orchestrator.spec.refs import REF_RE

#: most characters a rendered template, or one string or list a template builds with `*`
#: or `+`, may have: past it rendering stops with an error instead of taking the memory
#: of the process (`{{ ('x' * 100000) * 100000 }}` is ten gigabytes)
MAX_RENDER_CHARS = 10_000_000
#: most bits of an integer `**` may produce (as the calc tool)
_MAX_POW_BITS = 4_000


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class _TooLarge(Exception):
    pass


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with `*`, `+` and `**` held to sizes that fit in memory
    (the sandbox bounds `range` only)."""

    intercepted_binops = frozenset({"*", "+", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and (
                    abs(left).bit_length() * right > _MAX_POW_BITS):
                raise _TooLarge(f"{left} ** {right} is too large")
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and (
                        len(seq) * n > MAX_RENDER_CHARS):
                    raise _TooLarge(f"`*` would make a {type(seq).__name__} of "
                                    f"{len(seq) * n:,} items, more than {MAX_RENDER_CHARS:,}")
        elif isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple) and (
                len(left) + len(right) > MAX_RENDER_CHARS):
            raise _TooLarge(f"`+` would make a {type(left).__name__} of "
                            f"{len(left) + len(right):,} items, more than {MAX_RENDER_CHARS:,}")
        return super().call_binop(context, operator, left, right)


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    """The one sandboxed environment every template is compiled in."""
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["json"] = _tojson
    return env


def to_jinja(source: str) -> str:
    """Rewrite `${path}` references into Jinja2 expressions."""
    return REF_RE.sub(lambda m: "{{ " + m.group(1) + " }}", source)


@dataclass(frozen=True, slots=True)
class TemplateIssue:
    message: str
    line: int  # 1-based line inside the template, 0 if unknown


def check(source: str) -> TemplateIssue | None:
    """Return the syntax problem of a template, or None."""
    try:
        environment().parse(to_jinja(source))
    except TemplateSyntaxError as exc:
        return TemplateIssue(exc.message or "syntax error", exc.lineno or 0)
    except RecursionError:
        return TemplateIssue("the template is nested too deeply", 0)
    return None


def check_expression(source: str) -> TemplateIssue | None:
    """Return the syntax problem of a Jinja2 expression (branch conditions), or None."""
    try:
        environment().compile_expression(to_jinja_expr(source))
    except TemplateSyntaxError as exc:
        return TemplateIssue(exc.message or "syntax error", exc.lineno or 0)
    except RecursionError:
        return TemplateIssue("the expression is nested too deeply", 0)
    return None


def to_jinja_expr(source: str) -> str:
    """Branch conditions may use `${...}` references; inside an expression they are bare paths."""
    return REF_RE.sub(lambda m: "(" + m.group(1) + ")", source)


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """A reference found in a template: root (`steps`/`inputs`/local), name, field path."""

    root: str
    name: str
    path: tuple[str | int, ...]


def _chain(node: nodes.Node) -> tuple[str, list[str | int]] | None:
    path: list[str | int] = []
    while True:
        if isinstance(node, nodes.Getattr):
            path.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            path.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            path.reverse()
            return node.name, path
        else:
            return None


def template_refs(source: str, *, expression: bool = False) -> list[TemplateRef]:
    """Every `steps.ID...` / `inputs.NAME...` access in a template (or expression).

    Only the longest access chains are returned (``steps.a.output.x``, not also
    ``steps.a``). A template that does not parse returns no refs; :func:`check`
    reports it.
    """
    env = environment()
    try:
        if expression:
            tree: nodes.Node = env.parse("{{ " + to_jinja_expr(source) + " }}")
        else:
            tree = env.parse(to_jinja(source))
    except (TemplateSyntaxError, RecursionError):
        return []
    found: list[TemplateRef] = []
    inner: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if id(node) in inner:
            continue
        chain = _chain(node)
        if chain is None:
            continue
        sub = node
        while isinstance(sub, nodes.Getattr | nodes.Getitem):
            sub = sub.node
            inner.add(id(sub))
        root, path = chain
        if root in {"steps", "inputs"} and path and isinstance(path[0], str):
            rest = tuple(path[2:]) if root == "steps" and len(path) > 1 else tuple(path[1:])
            found.append(TemplateRef(root, path[0], rest))
    for name in tree.find_all(nodes.Name):
        if id(name) not in inner and name.name not in {"steps", "inputs"} and name.ctx == "load":
            found.append(TemplateRef(name.name, "", ()))
    return found


def undeclared_names(source: str, *, expression: bool = False) -> set[str]:
    """The names a template (or expression) reads that neither it defines (`{% set %}`,
    loop variables, macro arguments) nor Jinja2 does (`range`, `loop`...): those its
    render must be given. Empty for a template that does not parse (see :func:`check`)."""
    env = environment()
    try:
        if expression:
            tree = env.parse("{{ " + to_jinja_expr(source) + " }}")
        else:
            tree = env.parse(to_jinja(source))
        return meta.find_undeclared_variables(tree)
    except (TemplateSyntaxError, RecursionError):
        return set()


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return environment().from_string(to_jinja(source))


@functools.lru_cache(maxsize=1024)
def _compiled_expr(source: str) -> Any:
    return environment().compile_expression(to_jinja_expr(source))


def render(source: str, variables: dict[str, Any]) -> str:
    """Render a template in the sandbox.

    :raises ReferenceResolutionError: for an undefined name or a sandbox violation.
    """
    try:
        return _render_bounded(_compiled(source), variables)
    except (UndefinedError, SecurityError, _TooLarge) as exc:
        raise ReferenceResolutionError(f"template: {exc}") from None
    except Exception as exc:  # anything a template's own code raises (1/0, bad filter args)
        raise ReferenceResolutionError(f"template: {type(exc).__name__}: {exc}") from None


def _render_bounded(template: Any, variables: dict[str, Any]) -> str:
    """Render chunk by chunk, stopping once the text passes :data:`MAX_RENDER_CHARS` (a
    loop can repeat text past any limit on one value)."""
    parts: list[str] = []
    size = 0
    for part in template.generate(**variables):
        size += len(part)
        if size > MAX_RENDER_CHARS:
            raise _TooLarge(f"the rendered text is longer than {MAX_RENDER_CHARS:,} characters")
        parts.append(part)
    return "".join(parts)


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    """Evaluate a Jinja2 expression in the sandbox (branch conditions).

    :raises ReferenceResolutionError: for an undefined name or a sandbox violation.
    """
    try:
        return _compiled_expr(expression)(**variables)
    except (UndefinedError, SecurityError, _TooLarge) as exc:
        raise ReferenceResolutionError(f"condition `{expression}`: {exc}") from None
    except Exception as exc:  # anything the expression's own code raises
        raise ReferenceResolutionError(
            f"condition `{expression}`: {type(exc).__name__}: {exc}") from None
