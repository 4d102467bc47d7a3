"""`${...}` references: parse, list dependencies, resolve against run values.

Grammar of one reference (whitespace inside the braces is allowed)::

    ${inputs.NAME(.FIELD | [INDEX] | ['KEY'])*}
    ${steps.ID.output(.FIELD | [INDEX] | ['KEY'])*}
    ${item...} / ${index}          inside a map body

A value that is exactly one reference resolves to the referenced JSON value, typed.
A reference inside a longer string is interpolated: strings as they are, other
values as compact JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import MissingPathError, ReferenceResolutionError

REF_RE = re.compile(r"\$\{\s*([^}]*?)\s*\}")
_SEGMENT_RE = re.compile(
    r"\.([A-Za-z_][A-Za-z0-9_\-]*)"  # .field
    r"|\[\s*(-?\d+)\s*\]"  # [3]
    r"|\[\s*'([^']*)'\s*\]"  # ['key']
    r"|\[\s*\"([^\"]*)\"\s*\]"  # ["key"]
)
_HEAD_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)")

PathKey = str | int


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference.

    :param root: ``inputs``, ``steps`` or a local name such as ``item``.
    :param name: the input name or step id (empty for local names).
    :param path: the field path after ``output`` (or after the input name / local).
    :param text: the source text inside the braces.
    """

    root: str
    name: str
    path: tuple[PathKey, ...]
    text: str

    @property
    def step_id(self) -> str | None:
        return self.name if self.root == "steps" else None


def parse_ref(text: str) -> Ref:
    """Parse the inside of ``${...}``.

    :raises ValueError: with a readable reason when the text is not a reference.
    """
    head = _HEAD_RE.match(text)
    if not head:
        raise ValueError(f"`${{{text}}}` is not a reference; expected inputs.NAME or steps.ID.output")
    root = head.group(1)
    rest = text[head.end():]
    segments: list[PathKey] = []
    pos = 0
    while pos < len(rest):
        m = _SEGMENT_RE.match(rest, pos)
        if not m:
            odd = re.match(r"\.([^.\[\]'\"\s]+)", rest[pos:])
            raise ValueError(f"cannot parse `{rest[pos:]}` in reference `${{{text}}}`" + (
                f": write a name of other characters than letters, digits, `_` and `-` as "
                f"[{odd[1]!r}]" if odd else ""))
        if m.group(1) is not None:
            segments.append(m.group(1))
        elif m.group(2) is not None:
            segments.append(int(m.group(2)))
        else:
            segments.append(m.group(3) if m.group(3) is not None else m.group(4))
        pos = m.end()
    if root == "steps":
        if len(segments) < 2 or not isinstance(segments[0], str) or segments[1] != "output":
            raise ValueError(f"`${{{text}}}` must have the form steps.ID.output[...]")
        return Ref("steps", segments[0], tuple(segments[2:]), text)
    if root == "inputs":
        if not segments or not isinstance(segments[0], str):
            raise ValueError(f"`${{{text}}}` must have the form inputs.NAME")
        return Ref("inputs", segments[0], tuple(segments[1:]), text)
    return Ref(root, "", tuple(segments), text)


def iter_refs(value: Any) -> Iterator[tuple[Ref | ValueError, str]]:
    """Yield every reference (or its parse error) in a nested value, with its raw text."""
    if isinstance(value, str):
        for m in REF_RE.finditer(value):
            try:
                yield parse_ref(m.group(1)), m.group(0)
            except ValueError as exc:
                yield exc, m.group(0)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_refs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from iter_refs(v)


def step_deps(value: Any) -> set[str]:
    """The step ids a nested value refers to."""
    return {r.name for r, _ in iter_refs(value) if isinstance(r, Ref) and r.root == "steps"}


def walk_path(value: Any, path: tuple[PathKey, ...], ref_text: str) -> Any:
    """Follow a field path into a JSON value.

    :raises MissingPathError: naming the missing segment.
    """
    cur = value
    for seg in path:
        try:
            if isinstance(seg, int) or (isinstance(cur, list) and str(seg).lstrip("-").isdigit()):
                cur = cur[int(seg)]
            else:
                cur = cur[seg]
        except (KeyError, IndexError, TypeError, ValueError):
            shown = json.dumps(cur, default=str)
            if len(shown) > 120:
                shown = shown[:117] + "..."
            raise MissingPathError(f"${{{ref_text}}}", f"no `{seg}` in {shown}") from None
    return cur


class NotAValueError(ReferenceResolutionError):
    """A template used ``steps`` or ``inputs`` (or ``steps.ID``, the step rather than
    its output) as a value: printed it, compared it, made JSON of it."""


def _shown_name(root: str, key: object) -> str:
    return f"{root}.{key}" if isinstance(key, str) and key.isidentifier() else f"{root}[{key!r}]"


class Names:
    """Read-only names for templates: `inputs.items` is the input called `items`,
    never a dict method (Jinja2 tries attributes before keys).

    Used as a value (`{{ steps }}`, `{{ inputs | json }}`) it raises
    :class:`NotAValueError` saying what to write instead: its Python repr is no text
    for a prompt."""

    __slots__ = ("_v", "_wrap")

    def __init__(self, values: Mapping[str, Any], wrap: bool = False) -> None:
        self._v = values
        self._wrap = wrap  # steps: `steps.ID` is {"output": ...}

    @property
    def root(self) -> str:
        """``steps`` or ``inputs``: the name templates read this by."""
        return "steps" if self._wrap else "inputs"

    def __getitem__(self, key: str) -> Any:
        value = self._v[key]
        return StepValue(key, value) if self._wrap else value

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._v

    def __iter__(self) -> Any:
        return iter(self._v)

    def __len__(self) -> int:
        return len(self._v)

    def missing(self, key: object) -> str:
        """Why ``key`` reads nothing here, naming the reference and the names there are."""
        known = ", ".join(sorted(map(str, self._v))[:12]) + (", ..." if len(self._v) > 12
                                                              else "")
        if self._wrap:
            return (f"`{_shown_name('steps', key)}`: no step {key!r} has an output here"
                    f" (steps with one: {known or 'none'})")
        return f"`{_shown_name('inputs', key)}`: no input named {key!r} (inputs: {known or 'none'})"

    def misuse(self) -> str:
        """What to write instead of this namespace used as a value."""
        if self._wrap:
            return "`steps` holds every step, it is not a value: write steps.ID.output"
        return "`inputs` holds every input, it is not a value: write inputs.NAME"

    def __str__(self) -> str:
        raise NotAValueError(self.misuse())

    def __repr__(self) -> str:
        return f"<{self.root}: {', '.join(map(str, self._v))}>"


class StepValue(dict[str, Any]):
    """`steps.ID` in a template: ``{"output": ...}``. Printed, it raises
    :class:`NotAValueError` (``{'output': ...}`` is no text for a prompt): the value is
    `steps.ID.output`."""

    __slots__ = ("step_id",)

    def __init__(self, step_id: str, output: Any) -> None:
        super().__init__(output=output)
        self.step_id = step_id

    def misuse(self) -> str:
        shown = _shown_name("steps", self.step_id)
        return f"`{shown}` is the step, not a value: write {shown}.output"

    def missing(self, key: object) -> str:
        """Why ``key`` reads nothing here: a step has only its ``output``."""
        shown = _shown_name("steps", self.step_id)
        return (f"`{shown}{_shown_name('', key)}`: a step's value is `{shown}.output`")

    def __str__(self) -> str:
        raise NotAValueError(self.misuse())


class Scope:
    """Values a reference can see: inputs, finished steps' outputs, and locals (map items).

    :param skipped: steps a branch did not take: a reference to one reads null, a path
        into it too (``${steps.x.output.field}`` of a skipped ``x`` is null, not an error).
    """

    __slots__ = ("inputs", "locals", "outputs", "skipped")

    def __init__(
        self,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        locals_: Mapping[str, Any] | None = None,
        skipped: Container[str] = frozenset(),
    ) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.locals = locals_ or {}
        self.skipped = skipped

    def lookup(self, ref: Ref) -> Any:
        if ref.root == "inputs":
            if ref.name not in self.inputs:
                raise ReferenceResolutionError(f"`${{{ref.text}}}`: no input named {ref.name!r}")
            return walk_path(self.inputs[ref.name], ref.path, ref.text)
        if ref.root == "steps":
            if ref.name not in self.outputs:
                raise ReferenceResolutionError(
                    f"`${{{ref.text}}}`: step {ref.name!r} has no output yet"
                )
            if ref.path and ref.name in self.skipped:
                return None  # a branch did not take it: it reads null, whatever the path
            return walk_path(self.outputs[ref.name], ref.path, ref.text)
        if ref.root in self.locals:
            return walk_path(self.locals[ref.root], ref.path, ref.text)
        raise ReferenceResolutionError(f"`${{{ref.text}}}`: unknown name {ref.root!r}")

    def template_vars(self) -> dict[str, Any]:
        """Variables for Jinja2 templates: ``inputs``, ``steps.ID.output`` and locals.

        Nothing is copied: templates read the run's values through :class:`Names`.
        """
        return {"inputs": Names(self.inputs), "steps": Names(self.outputs, wrap=True),
                **self.locals}


def interpolated(value: Any) -> str:
    """A referenced value as the text put in place of its reference inside a longer
    string (and in a prompt, wherever it is): a string as it is, any other value as
    JSON (``true``, ``null``, ``{"a": [1]}``), never Python's repr.

    :raises TypeError: for a value that is not JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def resolve(value: Any, scope: Scope) -> Any:
    """Resolve every reference in a nested value.

    :raises ReferenceResolutionError: when a reference does not resolve.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value
        whole = REF_RE.fullmatch(value.strip())
        if whole:
            return scope.lookup(_parse_or_raise(whole.group(1)))

        def _sub(m: re.Match[str]) -> str:
            return interpolated(scope.lookup(_parse_or_raise(m.group(1))))

        return REF_RE.sub(_sub, value)
    if isinstance(value, Mapping):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, scope) for v in value]
    return value


def _parse_or_raise(text: str) -> Ref:
    try:
        return parse_ref(text)
    except ValueError as exc:
        raise ReferenceResolutionError(str(exc)) from None



Resolver = Callable[["Scope"], Any]


def compile_value(value: Any) -> Resolver:
    """Parse every reference in a nested value once; return a function that resolves the
    value against a scope exactly as :func:`resolve` does (same results, same errors).

    The engine compiles each step's arguments once per graph instead of parsing their
    references on every dispatch. A reference that does not parse raises
    :class:`ReferenceResolutionError` when resolved, as with :func:`resolve`.
    """
    if isinstance(value, str):
        if "${" not in value:
            return _Constant(value)
        whole = REF_RE.fullmatch(value.strip())
        if whole:
            return _compile_lookup(whole.group(1))
        pieces: list[str | Resolver] = []
        pos = 0
        for m in REF_RE.finditer(value):
            if m.start() > pos:
                pieces.append(value[pos:m.start()])
            pieces.append(_compile_lookup(m.group(1)))
            pos = m.end()
        if pos < len(value):
            pieces.append(value[pos:])

        def interpolate(scope: Scope) -> str:
            out = []
            for p in pieces:
                if isinstance(p, str):
                    out.append(p)
                else:
                    out.append(interpolated(p(scope)))
            return "".join(out)

        return interpolate
    if isinstance(value, Mapping):
        items = [(k, compile_value(v)) for k, v in value.items()]
        if all(isinstance(r, _Constant) for _, r in items):
            return _Constant(value)
        # scalar constants are put in as they are; the rest is resolved
        fixed = {k: r.value for k, r in items if isinstance(r, _Constant) and r.scalar}
        dynamic = [(k, r) for k, r in items if not (isinstance(r, _Constant) and r.scalar)]
        if [k for k, _ in items] != [*fixed, *(k for k, _ in dynamic)]:
            # keys would come out in another order: resolve each in place
            return lambda scope: {k: r(scope) for k, r in items}

        def resolve_mapping(scope: Scope) -> dict[Any, Any]:
            out = fixed.copy()
            for k, r in dynamic:
                out[k] = r(scope)
            return out

        return resolve_mapping
    if isinstance(value, list | tuple):
        parts = [compile_value(v) for v in value]
        if all(isinstance(r, _Constant) for r in parts):
            return _Constant(value)
        if len(parts) == 1:
            only = parts[0]
            return lambda scope: [only(scope)]
        return lambda scope: [r(scope) for r in parts]
    return _Constant(value)


def _compile_lookup(text: str) -> Resolver:
    try:
        ref = parse_ref(text)
    except ValueError as exc:
        message = str(exc)

        def bad(scope: Scope) -> Any:
            raise ReferenceResolutionError(message)

        return bad
    if ref.root == "steps" and not ref.path:
        name = ref.name

        def step_output(scope: Scope) -> Any:
            outputs = scope.outputs
            return outputs[name] if name in outputs else scope.lookup(ref)  # readable error

        return step_output
    return lambda scope: scope.lookup(ref)


class _Constant:
    """A value without references. Resolving it gives fresh containers each time (as
    :func:`resolve` does), so a step that changes its arguments changes nothing shared."""

    __slots__ = ("scalar", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.scalar = not isinstance(value, Mapping | list | tuple)

    def __call__(self, scope: Scope) -> Any:
        return self.value if self.scalar else _copy(self.value)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value
