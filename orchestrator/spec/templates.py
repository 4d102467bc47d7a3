"""Prompt templates: Jinja2 in its immutable sandbox, never plain string formatting.

`${steps.a.output}` in a template source is rewritten to `{{ steps.a.output | _ref_text }}`
before compiling, so both spellings work; the filter writes what the reference writes
everywhere else (a string as it is, any other value as JSON), where `{{ }}` prints as
Jinja2 does. Values are never re-parsed as templates, so an input that contains `{{ ... }}`
stays text (no template injection).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from dataclasses import dataclass
from pprint import pformat
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator, Frame, operators, optimizeconst
from jinja2.exceptions import SecurityError, TemplateAssertionError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import ReferenceResolutionError, TemplateRenderError, clipped
from orchestrator.spec._template_bounds import (
    MAX_RENDER_CHARS,
    TemplateLimit,
    bounded_filters,
    charged_filters,
    charged_tests,
    check_binop,
    checked_call,
    compared,
    concat,
    lipsum,
    sized_output,
    spend,
    spend_call,
    steps,
    str_format,
    work_budget,
)
from orchestrator.spec._template_bounds import TooLarge as _TooLarge
from orchestrator.spec.refs import (
    REF_RE,
    Names,
    NotAValueError,
    PathKey,
    StepValue,
    interpolated,
    parse_ref,
)


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_not_json)


def _not_json(value: Any) -> Any:
    """``default`` of the `json` and `tojson` filters: `steps`/`inputs` used as a value
    is a clear error (json's own names the Python class, `Names`)."""
    _refuse_namespace(value)
    raise TypeError(f"a {type(value).__name__} value cannot be written as JSON")


def _refuse_namespace(value: Any) -> None:
    """:raises NotAValueError: when ``value`` is `steps`, `inputs` or `steps.ID`."""
    if isinstance(value, Names | StepValue):
        raise NotAValueError(value.misuse())


def _ref_text(value: Any) -> str:
    """The filter a `${...}` reference in a template is rewritten with: the text the
    reference puts in a longer string in arguments and outputs (a string as it is, any
    other value as JSON: `true`, `null`, `{"a": 1}`), not the Python repr `{{ }}` prints.

    :raises UndefinedError: for a reference that reads nothing (as `{{ }}` would).
    :raises NotAValueError: for `steps`/`inputs`/`steps.ID` (as `{{ }}` would)."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined: raises, saying what is missing
    _refuse_namespace(value)
    return interpolated(value)


#: the filter :func:`to_jinja` puts on each `${...}` reference
_REF_FILTER = "_ref_text"


def _pprint(value: Any) -> str:
    _refuse_namespace(value)  # (Python's repr of it otherwise)
    return pformat(value)


def _spend_one(lineno: int) -> nodes.Expr:
    """The expression ``environment.spend(1)`` (one step of work), as a node: Jinja2 lets
    no one define a node type, and writes an InternalName's name as it is (its parser
    makes one so, InternalName refusing to be made)."""
    node = object.__new__(nodes.InternalName)
    nodes.Node.__init__(node, "environment.spend(1)", lineno=lineno)
    return node


class _CodeGenerator(CodeGenerator):
    """Jinja2's code generator, whose `~` joins its parts through the environment's
    :meth:`_Sandbox.sized_concat`, which sizes them first, and whose loops count each
    item they go through as a step of work (``spend``, in the `if` of a loop that has
    one, else in its body) and its comparisons each operand (``compared``): the sandbox
    counts calls, filters, tests and operators."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = copy.copy(node)  # (the tree is Jinja2's, made for this compile)
        if node.test is not None:  # each item the `if` tests, passed or not
            counted.test = nodes.And(_spend_one(node.test.lineno), node.test,
                                     lineno=node.test.lineno)
        else:
            counted.body = [nodes.ExprStmt(_spend_one(node.lineno), lineno=node.lineno),
                            *node.body]
        super().visit_For(counted, frame)

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        # Jinja2's, each operand counted (environment.compared) as it is evaluated, but
        # a constant: the template's own text, whose size the template's bounds
        self.write("(")
        for at, (op, expr) in enumerate([("", node.expr), *((o.op, o.expr) for o in node.ops)]):
            if at:
                self.write(f" {operators[op]} ")
            counted = not isinstance(expr, nodes.Const)
            self.write("environment.compared(" if counted else "")
            self.visit(expr, frame)
            self.write(")" if counted else "")
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.sized_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, where each operation that builds a value is held to a
    size that fits in memory (the sandbox bounds `range` only): `*`, `+`, `**`, `%` and
    `~`, the methods of strings (``'x'.center(n)``, ``sep.join(items)``, ``str.format``),
    and the filters that take a size (see :mod:`orchestrator.spec._template_bounds`); and
    each render's work: its loops' iterations, its calls, what its filters, methods and
    operators go through."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = _CodeGenerator
    sized_concat = staticmethod(concat)
    spend = staticmethod(spend)
    compared = staticmethod(compared)

    def call(__self, __context: Any, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        args, kwargs = checked_call(__obj, args, kwargs)
        spend_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        # what it made: `s.split()` an item of each word (a range is made at once)
        spend(1 if isinstance(result, range) else steps(result))
        return result

    def wrap_str_format(self, value: Any) -> Any:
        if super().wrap_str_format(value) is None:
            return None
        return str_format(self, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # a JSON object's field before a dict method: `steps.a.output.items` is its
        # `items`, as in `${steps.a.output.items}` (Jinja2 tries the attribute first)
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        if isinstance(obj, Names | StepValue):  # its names only; a missing one says why
            return obj[attribute] if attribute in obj else self.undefined(
                obj.missing(attribute), obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Names | StepValue):
            return obj[argument] if isinstance(argument, str) and argument in obj else \
                self.undefined(obj.missing(argument), obj=obj, name=argument)
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        spend(steps(result))
        return result


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    """The one sandboxed environment every template is compiled in."""
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                   finalize=sized_output)
    env.filters["json"] = _tojson
    env.filters["pprint"] = _pprint
    env.filters[_REF_FILTER] = _ref_text
    env.filters.update(bounded_filters(env))
    env.filters = charged_filters(env.filters)
    env.tests.update(charged_tests(env.tests))
    env.globals["lipsum"] = lipsum(env.globals["lipsum"])  # type: ignore[arg-type]
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _not_json}
    return env


def to_jinja(source: str) -> str:
    """Rewrite `${path}` references into Jinja2 expressions that print the value as
    the reference does elsewhere (see :func:`_ref_text`). Text that is no reference
    (`${not a ref}`, which the reference checks report) is put in as written."""
    return REF_RE.sub(_jinja_ref, source)


def _jinja_ref(match: re.Match[str]) -> str:
    path = _jinja_path(match.group(1))
    return "{{ " + match.group(1) + " }}" if path is None else \
        "{{ " + path + " | " + _REF_FILTER + " }}"


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _jinja_path(text: str) -> str | None:
    """The inside of a `${...}` reference as a Jinja2 expression: as written, except that
    a name Jinja2 would not read as one (a step id holding `-`, which `{{ steps.a-b }}`
    reads as a subtraction) is a subscript (`steps['a-b'].output`); None when it is no
    reference (the reference checks report it)."""
    try:
        ref = parse_ref(text)
    except ValueError:
        return None
    head: list[PathKey] = [ref.name, "output"] if ref.root == "steps" else (
        [ref.name] if ref.root == "inputs" else [])
    parts = [*head, *ref.path]
    if all(isinstance(p, int) or _NAME_RE.fullmatch(p) for p in parts):
        return text
    return ref.root + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" if _NAME_RE.fullmatch(p) else f"[{p!r}]"
        for p in parts)


@dataclass(frozen=True, slots=True)
class TemplateIssue:
    message: str
    line: int  # 1-based line inside the template, 0 if unknown
    #: how to fix it, when it is not a syntax error (an unknown filter)
    hint: str = ""


@functools.lru_cache(maxsize=4096)
def _parsed(source: str, expression: bool) -> nodes.Template:
    """The Jinja2 tree of a template (or of an expression, as `{{ expression }}`): parsed
    once, shared by :func:`check`, :func:`template_refs`, :func:`undeclared_names` and
    :func:`value_misuses`, which only read it. Whoever would change a tree parses its own.

    :raises TemplateSyntaxError: when it does not parse (not cached: parsed again)."""
    if expression:
        return environment().parse("{{ " + to_jinja_expr(source) + " }}")
    return environment().parse(to_jinja(source))


def check(source: str) -> TemplateIssue | None:
    """Return the syntax problem of a template, or None (an unknown filter or test is one:
    Jinja2 would find it only when it renders)."""
    try:
        return _unknown_filter(_parsed(source, False))
    except TemplateSyntaxError as exc:
        return TemplateIssue(exc.message or "syntax error", exc.lineno or 0)
    except RecursionError:
        return TemplateIssue("the template is nested too deeply", 0)


def check_expression(source: str) -> TemplateIssue | None:
    """Return the syntax problem of a Jinja2 expression (branch conditions), or None."""
    try:
        environment().compile_expression(to_jinja_expr(source))
    except TemplateSyntaxError as exc:
        if not isinstance(exc, TemplateAssertionError):  # (an unknown filter: see below)
            delimiter = _DELIMITER_RE.search(source)
            if delimiter is not None:  # `when: "{{ steps.a.output == 'x' }}"`
                return TemplateIssue(
                    f"a condition is a Jinja2 expression, not a template: `{delimiter[0]}` "
                    "does not belong in it", source.count("\n", 0, delimiter.start()) + 1,
                    "write the expression alone, e.g. when: steps.a.output == 'x'")
            return TemplateIssue(exc.message or "syntax error", exc.lineno or 0)
    except RecursionError:
        return TemplateIssue("the expression is nested too deeply", 0)
    try:
        return _unknown_filter(_parsed(source, True))
    except TemplateSyntaxError as exc:
        return TemplateIssue(exc.message or "syntax error", exc.lineno or 0)
    except RecursionError:
        return TemplateIssue("the expression is nested too deeply", 0)


#: a template's delimiters, which a condition written as a template holds
_DELIMITER_RE = re.compile(r"\{\{|\{%|\}\}|%\}")


def _unknown_filter(tree: nodes.Template) -> TemplateIssue | None:
    """The first filter (`x | name`) or test (`x is name`) the sandbox does not have."""
    env = environment()
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        known = env.filters if isinstance(node, nodes.Filter) else env.tests
        if node.name not in known:
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            close = difflib.get_close_matches(
                node.name, [k for k in known if not k.startswith("_")], n=1)
            return TemplateIssue(
                f"no {what} named {node.name!r}", node.lineno or 0,
                f"did you mean {close[0]!r}?" if close else
                "use one of Jinja2's built-in filters, or `json`" if what == "filter" else
                "use one of Jinja2's built-in tests (defined, none, number...)")
    return None


def to_jinja_expr(source: str) -> str:
    """Branch conditions may use `${...}` references; inside an expression they are bare paths."""
    return REF_RE.sub(lambda m: "(" + (_jinja_path(m.group(1)) or m.group(1)) + ")", source)


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """A reference found in a template: root (`steps`/`inputs`/local), name, field path.

    ``member`` is what a `steps.ID` reference reads of the step (``output``; ``None``
    when it reads the step itself, `{{ steps.a }}`)."""

    root: str
    name: str
    path: tuple[str | int, ...]
    member: str | int | None = None
    #: the template line it is on (1-based; 0 when not known)
    line: int = 0


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
    ``steps.a``). A `steps`/`inputs` the template binds itself (`{% for steps in ... %}`,
    `{% set inputs = ... %}`) is no namespace there: its fields are no references. A
    template that does not parse returns no refs; :func:`check` reports it.
    """
    try:
        tree = _parsed(source, expression)
    except (TemplateSyntaxError, RecursionError):
        return []
    found: list[TemplateRef] = []
    inner: set[int] = set()
    # only where it surely is another value: a dependency dropped for a name rebound in
    # one branch would let the step start before the step it reads
    rebound = (_rebound_reads(tree, surely=True) if isinstance(tree, nodes.Template)
               else set())
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
        if id(sub) in rebound:
            continue
        root, path = chain
        if root in {"steps", "inputs"} and path and isinstance(path[0], str):
            if root == "steps":
                found.append(TemplateRef(root, path[0], tuple(path[2:]),
                                         path[1] if len(path) > 1 else None, node.lineno))
            else:
                found.append(TemplateRef(root, path[0], tuple(path[1:]), line=node.lineno))
    for name in tree.find_all(nodes.Name):
        if id(name) not in inner and name.name not in {"steps", "inputs"} and name.ctx == "load":
            found.append(TemplateRef(name.name, "", (), line=name.lineno))
    return found


def rebound_at(source: str, spans: list[tuple[int, int]]) -> set[int]:
    """Which of the `steps`/`inputs` names at ``spans`` of a template (each the (start,
    end) of the name in ``source``) are read where the template surely binds that name
    itself, as :func:`template_refs` tells (those are no references): their indexes in
    ``spans``. Empty for a template that does not parse, or with no `{% %}` tag."""
    if "{%" not in source or not spans:
        return set()
    marker = "_rebound_at_"
    while marker in source:
        marker += "_"
    placed: dict[str, tuple[int, str]] = {}
    parts: list[str] = []
    end = 0
    for k, (start, stop) in enumerate(spans):
        placed[f"{marker}{k}"] = (k, source[start:stop])
        parts += [source[end:start], f"{marker}{k}"]
        end = stop
    try:  # its own tree, not the shared one: the markers are renamed in it
        tree = environment().parse(to_jinja("".join([*parts, source[end:]])))
    except (TemplateSyntaxError, RecursionError):
        return set()
    at: dict[int, int] = {}
    for name in tree.find_all(nodes.Name):
        if name.name in placed:
            at[id(name)], name.name = placed[name.name]
    return {at[n] for n in _rebound_reads(tree, surely=True) if n in at}


def undeclared_names(source: str, *, expression: bool = False) -> set[str]:
    """The names a template (or expression) reads that neither it defines (`{% set %}`,
    loop variables, macro arguments) nor Jinja2 does (`range`, `loop`...): those its
    render must be given. Empty for a template that does not parse (see :func:`check`)."""
    try:
        tree = _parsed(source, expression)
        # meta.find_undeclared_variables, less its constant folding: that rewrites the
        # tree in place (new Const nodes, folded subtrees), and the tree is shared
        codegen = meta.TrackingCodeGenerator(environment())
        codegen.optimizer = None
        codegen.visit(tree)
    except (TemplateSyntaxError, RecursionError):
        return set()
    return codegen.undeclared_identifiers


def names_read(source: str) -> set[str]:
    """The names a text's `{{ }}`/`{% %}` tags may read, for the checks that such a text,
    which is not rendered (tool arguments, outputs), holds no template: the
    :func:`undeclared_names` of a template that parses; of one that does not (an unclosed
    `{{ steps.a.output `), each name its tags hold as far as Jinja2's lexer reads them,
    less the names of attributes, filters and tests and keyword arguments (a keyword such
    as `if` may be among them: look for the names that matter)."""
    try:
        _parsed(source, False)
    except TemplateSyntaxError:
        return _lexed_names(to_jinja(source))
    except RecursionError:
        return set()
    return undeclared_names(source)


def _lexed_names(source: str) -> set[str]:
    tokens: list[tuple[str, str]] = []
    try:
        for _, kind, value in environment().lex(source):
            if kind != "whitespace":
                tokens.append((kind, value))
    except TemplateSyntaxError:
        pass  # the tokens before the error
    found: set[str] = set()
    for k, (kind, value) in enumerate(tokens):
        before = tokens[k - 1] if k else ("", "")
        after = tokens[k + 1] if k + 1 < len(tokens) else ("", "")
        if kind == "name" and before not in {("operator", "."), ("operator", "|"),
                                             ("name", "is")} and after != ("operator", "="):
            found.add(value)
    return found


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    return environment().from_string(to_jinja(source))


@functools.lru_cache(maxsize=1024)
def _compiled_expr(source: str) -> Any:
    # undefined_to_none would read a missing field (`steps.a.output.nope`) as None: a
    # condition then quietly false, where a template names the field
    return environment().compile_expression(to_jinja_expr(source), undefined_to_none=False)


def render(source: str, variables: dict[str, Any]) -> str:
    """Render a template in the sandbox.

    :raises TemplateRenderError: for an undefined name or field, a sandbox violation, or
        anything the template's own code raises (``1/0``, a filter's bad argument); it
        names the template's line and the reference or expression that failed.
    """
    try:
        with work_budget():
            return _render_bounded(_compiled(source), variables)
    except (UndefinedError, SecurityError, TemplateLimit, NotAValueError) as exc:
        raise _render_error(source, variables, exc, str(exc)) from None
    except Exception as exc:  # anything a template's own code raises (1/0, bad filter args)
        raise _render_error(source, variables, exc,
                            f"{type(exc).__name__}: {exc}") from None


def _render_error(source: str, variables: dict[str, Any], exc: Exception,
                  detail: str) -> TemplateRenderError:
    """What failed in a template's render: its line (from the traceback Jinja2 rewrites
    onto the template's lines), and on that line the first reference that does not
    resolve, else the tag that holds the failing expression."""
    line = getattr(exc, "lineno", None) or 0  # a compile-time error (TemplateSyntaxError)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    expression = ""
    if line:
        try:
            if isinstance(exc, UndefinedError):
                expression = _failed_reference(to_jinja(source), line, variables) or ""
        except RecursionError:
            pass
        expression = expression or _tag_on_line(source, line)
    return TemplateRenderError(detail, line=line, expression=expression, source=source)


def _failed_reference(source: str, line: int, variables: dict[str, Any]) -> str | None:
    """The first access chain on a line of the template (``steps.a.output.items[3]``)
    that does not resolve against the render's variables, written as a path."""
    env = environment()
    tree = env.parse(source)
    inner: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if id(node) in inner or node.lineno != line:
            continue
        chain: list[nodes.Getattr | nodes.Getitem] = []
        cur: nodes.Node = node
        while isinstance(cur, nodes.Getattr | nodes.Getitem):
            inner.add(id(cur))
            chain.append(cur)
            cur = cur.node
        if not isinstance(cur, nodes.Name) or cur.name not in variables:
            continue  # a loop variable or `{% set %}` name: not known here
        text, value = cur.name, variables[cur.name]
        for link in reversed(chain):
            if isinstance(link, nodes.Getattr):
                key: Any = link.attr
                text += f".{key}"
                value = env.getattr(value, key)
            elif isinstance(link.arg, nodes.Const):
                key = link.arg.value
                text += f"[{key!r}]" if isinstance(key, str) else f"[{key}]"
                value = env.getitem(value, key)
            else:
                break  # a computed index: its value is not known here
            if isinstance(value, Undefined):
                return text
    return None


_TAG_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\$\{[^}]*\}")


def _tag_on_line(source: str, line: int) -> str:
    """The one `{{ }}`/`{% %}`/`${}` tag on a template line, or the line itself when it
    holds several or none (a tag that spans lines)."""
    lines = source.splitlines()
    if not 0 < line <= len(lines):
        return ""
    text = lines[line - 1].strip()
    tags = _TAG_RE.findall(text)
    return clipped(tags[0] if len(tags) == 1 else text, 80)


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
        with work_budget():
            value = _compiled_expr(expression)(**variables)
        if isinstance(value, Undefined):
            bool(value)  # StrictUndefined: raises UndefinedError naming what is missing
        _refuse_namespace(value)  # always true (`when: steps.a`): the author meant another
        return value
    except (UndefinedError, SecurityError, TemplateLimit, NotAValueError) as exc:
        raise ReferenceResolutionError(f"condition `{expression}`: {exc}") from None
    except Exception as exc:  # anything the expression's own code raises
        raise ReferenceResolutionError(
            f"condition `{expression}`: {type(exc).__name__}: {exc}") from None


_TEXT_FILTERS = frozenset({"string", "json", "tojson", "pprint", "trim", "upper", "lower",
                           "title", "capitalize", "e", "escape", "safe", _REF_FILTER})
_NAMESPACES = frozenset({"steps", "inputs"})
#: the text filters that take `steps.ID` (a dict, `{"output": ...}`) as it is
_JSON_FILTERS = frozenset({"json", "tojson"})


def value_misuses(source: str) -> list[tuple[int, str]]:
    """`{{ steps }}`, `{{ inputs | json }}`, `{{ steps.a }}`: an output whose whole value
    is a namespace or a step fails at run time; (line, what to write) for each, taken
    from what the run would say (`steps.a | json` is no misuse: it writes `{"output":
    ...}`, as the run does). Only what the template's tree makes certain: a name the
    template binds itself (`{% set steps = ... %}`, a loop variable, a macro argument,
    `{% with %}`) is its own value there, not the namespace, and is not reported."""
    try:
        tree = _parsed(source, False)
    except (TemplateSyntaxError, RecursionError):
        return []
    rebound = _rebound_reads(tree)
    found: list[tuple[int, str]] = []
    for out in tree.find_all(nodes.Output):
        for node in out.nodes:
            first = ""  # the filter applied to the value itself (the innermost)
            while isinstance(node, nodes.Filter) and node.name in _TEXT_FILTERS \
                    and node.node is not None:
                first, node = node.name, node.node
            if isinstance(node, nodes.Name) and node.name in _NAMESPACES \
                    and id(node) not in rebound:
                found.append((node.lineno, Names({}, node.name == "steps").misuse()))
            elif (first not in _JSON_FILTERS  # `steps.a | json` is `{"output": ...}`
                  and isinstance(node, nodes.Getattr | nodes.Getitem)
                  and isinstance(node.node, nodes.Name) and node.node.name == "steps"
                  and id(node.node) not in rebound):
                key = node.attr if isinstance(node, nodes.Getattr) else (
                    node.arg.value if isinstance(node.arg, nodes.Const) else None)
                if isinstance(key, str):
                    found.append((node.lineno, StepValue(key, None).misuse()))
    return found


def _stored(target: nodes.Node) -> set[str]:
    """The names an assignment target (`x`, `a, b`) binds; `ns.x` binds none."""
    names = [target, *target.find_all(nodes.Name)]
    return {n.name for n in names if isinstance(n, nodes.Name) and n.ctx == "store"}


def _rebound_reads(tree: nodes.Template, *, surely: bool = False) -> set[int]:
    """ids of the `steps`/`inputs` names a template reads where it may have bound that
    name itself, following Jinja2's scopes: `{% set %}` holds from there to the end of
    its scope, a loop variable in its loop, a macro's or call block's arguments and
    `{% with %}` targets in their bodies. An `{% if %}` is no scope: a set in any branch
    may hold after the whole if. A macro's or block's body may run where any top-level
    `{% set %}` holds (a macro sees the sets made before it is called), so there a name
    the template binds anywhere may be rebound.

    :param surely: only where the name is bound on every path (a set in an if's branch
        holds in that branch only; a macro's or block's body has its arguments and the
        bindings made before it)."""
    anywhere = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    anywhere |= {m.name for m in tree.find_all(nodes.Macro)}
    for imp in tree.find_all((nodes.Import, nodes.FromImport)):
        anywhere |= _imported(imp)
    anywhere &= _NAMESPACES
    if not anywhere:
        return set()
    later = set() if surely else anywhere  # what a macro or block may see bound
    rebound: set[int] = set()

    def reads(expr: nodes.Node | None, bound: set[str]) -> None:
        if expr is None or not bound:
            return
        for name in [expr, *expr.find_all(nodes.Name)]:
            if isinstance(name, nodes.Name) and name.ctx == "load" and name.name in bound:
                rebound.add(id(name))

    def body(stmts: list[nodes.Node], bound: set[str]) -> None:
        for stmt in stmts:
            statement(stmt, bound)

    def statement(node: nodes.Node, bound: set[str]) -> None:
        # ``bound`` is the scope's own set: a binding added to it holds for what follows
        if isinstance(node, nodes.Assign):
            reads(node.node, bound)
            bound |= _stored(node.target)
        elif isinstance(node, nodes.AssignBlock):
            reads(node.filter, bound)
            body(node.body, set(bound))
            bound |= _stored(node.target)
        elif isinstance(node, nodes.For):
            reads(node.iter, bound)
            inner = bound | _stored(node.target)
            reads(node.test, inner)
            body(node.body, inner)
            body(node.else_, set(bound))
        elif isinstance(node, nodes.If):
            reads(node.test, bound)
            # the branches' sets: kept after the if (may), or for their branch (surely)
            body(node.body, set(bound) if surely else bound)
            for elif_ in node.elif_:
                statement(elif_, set(bound) if surely else bound)
            body(node.else_, set(bound) if surely else bound)
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            for default in node.defaults:
                reads(default, bound)
            if isinstance(node, nodes.CallBlock):
                reads(node.call, bound)
            body(node.body, bound | later | {a.name for a in node.args})
            if isinstance(node, nodes.Macro):
                bound.add(node.name)
        elif isinstance(node, nodes.With):
            for value in node.values:
                reads(value, bound)
            body(node.body, bound | {t.name for t in node.targets if isinstance(t, nodes.Name)})
        elif isinstance(node, nodes.FilterBlock):
            reads(node.filter, bound)
            body(node.body, set(bound))
        elif isinstance(node, nodes.Block):
            body(node.body, bound | later)
        elif isinstance(node, nodes.Import | nodes.FromImport):
            reads(node.template, bound)
            bound |= _imported(node)
        else:  # output, {% do %}, {% autoescape %}...: no binding of their own
            for child in node.iter_child_nodes():
                if isinstance(child, nodes.Stmt):
                    statement(child, bound)
                else:
                    reads(child, bound)

    body(tree.body, set())
    return rebound


def _imported(node: nodes.Node) -> set[str]:
    if isinstance(node, nodes.Import):
        return {node.target}
    if isinstance(node, nodes.FromImport):
        return {n if isinstance(n, str) else n[1] for n in node.names}
    return set()
