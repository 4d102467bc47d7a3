"""Load workflow YAML into the spec, keeping the line and column of every value.

PyYAML composes the document into nodes (which carry marks); we build plain data
from the nodes ourselves so that every path in the data maps to its position.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import Problem, ValidationFailed
from orchestrator.errors import shown as _shown
from orchestrator.spec._scalar_lines import Layout, layout
from orchestrator.spec.base import BOOL_NOT_NUMBER, STRING_NOT_NUMBER
from orchestrator.spec.models import STEP_KINDS, ModelConfig, WorkflowSpec, shown_json

PathT = tuple[str | int, ...]


#: the document's sections whose entries a workflow built in Python may add to
_SECTIONS = ("steps", "inputs", "outputs", "models", "tools")


@dataclass
class SourceMap:
    """Where each value of a loaded document sits in its file."""

    file: str = "<sdk>"
    positions: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    #: step index -> the `kind:` the document gives it, so that a check can tell a step
    #: that did not validate (and stands in as a placeholder) from what the file says
    step_kinds: dict[int, str] = field(default_factory=dict)
    #: the document's text, and where each of its values that spans lines sits in it
    #: (start offset, end offset, first line), for :meth:`value_line`
    text: str = ""
    spans: dict[PathT, tuple[int, int, int]] = field(default_factory=dict)
    #: each span's layout once computed (a map's items fail on the same template)
    _layouts: dict[PathT, Layout | None] = field(default_factory=dict, repr=False,
                                                 compare=False)
    #: for a workflow built in Python, which has no lines: names the place a path leads
    #: to (``llm step 'a': prompt``), for :meth:`problem` to say where a problem is
    describe: Callable[[PathT], str] | None = field(default=None, repr=False, compare=False)

    def locate(self, path: Iterable[str | int]) -> tuple[int, int]:
        """The (line, column) of a path, or of its nearest located ancestor."""
        p = tuple(path)
        while p:
            if p in self.positions:
                return self.positions[p]
            p = p[:-1]
        return self.positions.get((), (0, 0))

    def value_line(self, path: Iterable[str | int], value: str, line: int,
                   needle: str = "", recheck: Callable[[str], int] | None = None) -> int:
        """The file line of line ``line`` (1-based) of the string ``value`` found at
        ``path`` (a template's line), where ``needle`` is on it when given and found
        there: YAML joins and splits the lines of a quoted, plain or folded string, so
        they are counted in the file as YAML read them. 0 when the path is not located.

        :param recheck: finds the line again in the value laid out as the file lays it
            out (a line break wherever the file has one; 0 when not found): a template's
            syntax error, which Jinja2 places on a line only, is placed on the file line
            that holds it rather than on the first of a template line YAML joined.

        A value that is not the document's (changed after loading) counts its lines from
        its key's: a multi-line one as a literal block (``|``), whose text starts on the
        line after its key.
        """
        p = tuple(path)
        key_line, _ = self.locate(p)
        found = self.layout(p, value) if key_line and line else None
        at = found.line_of(line, needle) if found is not None else None
        if found is not None and recheck is not None:
            text, lines = found.relaid()
            again = recheck(text)
            at = lines[again - 1] if 0 < again <= len(lines) else at
        if at is not None:
            return at
        if key_line and line and "\n" in value.rstrip("\n"):
            return key_line + line
        return key_line

    def value_spot(self, path: Iterable[str | int], value: str, line: int,
                   needle: str = "") -> tuple[int, int]:
        """The (line, column) of ``needle`` on line ``line`` (1-based) of the string
        ``value`` at ``path`` (see :meth:`value_line`): of a reference in a value or
        template that spans lines of the file. Where that is the line of the path's own
        position, or is not known, that position."""
        p = tuple(path)
        key_line, key_col = self.locate(p)
        at = self.value_line(p, value, line, needle) if line else key_line
        if not at or at == key_line:
            return key_line, key_col
        text = _file_lines(self.text)[at - 1] if at <= len(_file_lines(self.text)) else ""
        col = text.find(needle) if needle else -1
        if col < 0:
            col = len(text) - len(text.lstrip(" \t"))
        return at, col + 1

    def layout(self, path: Iterable[str | int], value: str) -> Layout | None:
        """The file line of each character of the string ``value`` at ``path``, when it
        is the document's and spans lines of the file."""
        p = tuple(path)
        if p not in self._layouts:
            span = self.spans.get(p)
            self._layouts[p] = layout(self.text, *span) if span is not None else None
        found = self._layouts[p]
        return found if found is not None and found.value == value else None

    def problem(self, path: Iterable[str | int], message: str, hint: str = "") -> Problem:
        """A problem at ``path``: at its line, or, where it has none and :attr:`describe`
        is set, with the message led by the place it names."""
        p = tuple(path)
        # a step (or output...) the document does not hold, added in Python to a loaded
        # workflow, is not at its section's line
        added = len(p) >= 2 and p[0] in _SECTIONS and p[:2] not in self.positions
        line, col = (0, 0) if added else self.locate(p)
        where = self.describe(p) if not line and self.describe is not None else ""
        if where:
            message = f"{where}: {message}"
        return Problem(message=message, hint=hint, file=self.file, line=line, column=col)


@functools.lru_cache(maxsize=8)
def _file_lines(text: str) -> list[str]:
    """A document's lines, broken where YAML breaks them (``\\r\\n`` is one break)."""
    return _BREAK_RE.split(text)


_BREAK_RE = re.compile("\r\n|[\n\r\x85\u2028\u2029]")

#: values a document may hold, and values that `*alias` copies may add: aliases can make
#: a few bytes expand to millions of values
MAX_VALUES = 200_000
MAX_ALIAS_VALUES = 10_000


class _TooLarge(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, noting where each ``*alias`` is: the node it gives for one is
    the anchor's, whose marks are where the anchor is."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        #: (id of the parent node, index in a sequence or id of a mapping key) -> where
        #: the alias that stands there is
        self.alias_marks: dict[tuple[int, int], Any] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if parent is not None and index is not None and self.check_event(yaml.AliasEvent):
            at = index if isinstance(index, int) else id(index)
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            if event.start_mark is not None:
                self.alias_marks[(id(parent), at)] = event.start_mark
        return super().compose_node(parent, index)


class _Builder:
    def __init__(self, loader: _Loader, smap: SourceMap) -> None:
        self.loader = loader
        self.smap = smap
        self.problems: list[Problem] = []
        self.count = 0
        self.alias_count = 0
        self.in_alias = 0
        self.seen: set[int] = set()
        #: where the ``*alias`` being built stands: what it copies is located there (a
        #: duplicate step id of ``- *step`` is at the alias, not at the step it copies)
        self.alias_at: tuple[int, int] | None = None

    def build(self, node: yaml.Node, path: PathT, alias: yaml.Mark | None = None) -> Any:
        self.count += 1
        if self.in_alias:
            self.alias_count += 1
        if self.count > MAX_VALUES or self.alias_count > MAX_ALIAS_VALUES:
            raise _TooLarge
        outer = self.alias_at
        if alias is not None and outer is None:
            self.alias_at = (alias.line + 1, alias.column + 1)
        try:
            if isinstance(node, yaml.CollectionNode):
                if id(node) in self.seen:  # an alias: built again as a copy
                    self.in_alias += 1
                    try:
                        return self._build(node, path)
                    finally:
                        self.in_alias -= 1
                self.seen.add(id(node))
            return self._build(node, path)
        finally:
            self.alias_at = outer

    def _at(self, node: yaml.Node) -> tuple[int, int]:
        """Where a node is, for the values built from it: inside an alias, the alias's."""
        return self.alias_at or (node.start_mark.line + 1, node.start_mark.column + 1)

    def _alias(self, parent: yaml.Node, at: int) -> yaml.Mark | None:
        return self.loader.alias_marks.get((id(parent), at))

    def _build(self, node: yaml.Node, path: PathT) -> Any:
        self.smap.positions.setdefault(path, self._at(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                # a merge key's tag has no constructor in the safe loader: test it first
                key = ("<<" if key_node.tag == "tag:yaml.org,2002:merge"
                       else self.loader.construct_object(key_node, deep=True))
                if key == "<<":
                    self._add(self.problems, key_node, "merge keys (`<<`) are not supported",
                              "write the fields out, or build the workflow in Python")
                    continue
                key = str(key)
                if key in out:
                    self._add(self.problems, key_node, f"duplicate key {key!r}",
                              "remove one of the two entries")
                    continue
                sub = (*path, key)
                self.smap.positions[sub] = self._at(key_node)
                out[key] = self.build(value_node, sub, self._alias(node, id(key_node)))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), self._alias(node, i))
                    for i, item in enumerate(node.value)]
        if node.start_mark.line != node.end_mark.line:
            self.smap.spans.setdefault(path, (node.start_mark.index, node.end_mark.index,
                                              node.start_mark.line + 1))
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self._add(self.problems, node, f"unsupported YAML value: {exc.problem}",
                      "use plain strings, numbers, lists and mappings")
            return None

    def _add(self, problems: list[Problem], node: yaml.Node, message: str, hint: str) -> None:
        problems.append(Problem(message, hint, self.smap.file, *self._at(node)))


#: what PyYAML says of a stream of more than one document
_SECOND_DOCUMENT = "expected a single document in the stream"


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    """A YAML syntax error, located where the fix goes: an unclosed quote, ``[`` or ``{``
    that the file ends inside is located where it opens, not at the file's end; and the
    message names what was being read when that started on an earlier line."""
    problem, context = exc.problem or "", exc.context or ""
    mark, opened = exc.problem_mark or exc.context_mark, exc.context_mark
    if mark is None:
        return Problem(f"YAML syntax: {problem or context}",
                       "check indentation, colons and quotes near here", file, 0, 0)
    msg = f"YAML syntax: {problem or context}"
    hint = "check indentation, colons and quotes near here"
    if context == _SECOND_DOCUMENT:
        msg = "a second YAML document starts here: a workflow file holds one"
        hint = "remove this `---` and what follows it, or give each workflow a file"
    elif "'\\t'" in problem:
        hint = "YAML indents with spaces only: replace the tab with spaces"
    elif problem.startswith("mapping values are not allowed"):
        hint = ("quote a value that holds `: `, e.g. prompt: \"Answer: yes\", or write it "
                "as a block (`prompt: |` and the text indented on the lines below)")
    elif opened is not None and context and opened.line != mark.line:
        if any(end in problem for end in _END_OF_STREAM):
            msg = f"YAML syntax: {problem} {context} that starts here"
            hint = "the file ends before this is closed: a quote, `]` or `}` is missing"
            mark = opened
        else:
            msg += f" ({context} that starts at line {opened.line + 1})"
    return Problem(msg, hint, file, mark.line + 1, mark.column + 1)


#: how PyYAML's problems name the end of the file
_END_OF_STREAM = ("<stream end>", "end of stream")


def _empty(text: str, file: str) -> Problem:
    """The problem of a document that holds no value."""
    lines = [line.strip() for line in _BREAK_RE.split(text) if line.strip()]
    comments = bool(lines) and all(line.startswith("#") for line in lines)
    return Problem("the file is empty" + (" (it holds only comments)" if comments else ""),
                   "start with `name:` and `steps:`", file, 1, 1)


def parse_yaml(text: str, file: str = "<string>") -> tuple[Any, SourceMap, list[Problem]]:
    """Parse YAML text into data plus a source map.

    :returns: (data, source map, problems); data is None when the YAML is broken.
    """
    smap = SourceMap(file=file, text=text)
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None, smap, [_empty(text, file)]
        builder = _Builder(loader, smap)
        data = builder.build(node, ())
        if data is None and not builder.problems:
            return None, smap, [_empty(text, file)]  # `null`, `~` or a lone tag
        steps = data.get("steps") if isinstance(data, dict) else None
        for i, raw in enumerate(steps if isinstance(steps, list) else []):
            if isinstance(raw, dict) and isinstance(raw.get("kind"), str):
                smap.step_kinds[i] = raw["kind"]
        return data, smap, builder.problems
    except _TooLarge:
        return None, smap, [Problem(f"the document expands to more than {MAX_VALUES} values, "
                                    f"or its `*` aliases to more than {MAX_ALIAS_VALUES}",
                                    "write the workflow out without `*` aliases", file, 1, 1)]
    except RecursionError:
        return None, smap, [Problem("the document is nested too deeply (or an alias refers to "
                                    "itself)", "flatten the structure", file, 1, 1)]
    except yaml.MarkedYAMLError as exc:
        return None, smap, [_syntax_problem(exc, file)]
    except yaml.reader.ReaderError as exc:  # a control character the reader refuses
        before = _BREAK_RE.split(text[:exc.position]) if isinstance(exc.position, int) else []
        line, col = (len(before), len(before[-1]) + 1) if before else (0, 0)
        code = exc.character if isinstance(exc.character, int) else None
        if code is None:
            return None, smap, [Problem(f"YAML: {exc.reason}", "remove it", file, line, col)]
        escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        return None, smap, [Problem(
            f"YAML does not allow the control character U+{code:04X} here",
            f"remove it; in a double-quoted string it may be written as `{escape}`",
            file, line, col)]
    except yaml.YAMLError as exc:
        return None, smap, [Problem(f"YAML: {exc}", "remove unprintable characters", file, 0, 0)]
    finally:
        if loader is not None:
            loader.dispose()


_HINTS = {
    "extra_forbidden": "remove it, or check its spelling against `ponder schema`",
    "missing": "add this field",
    "union_tag_invalid": "use one of: " + ", ".join(STEP_KINDS),
    "union_tag_not_found": "add `kind:` with one of: " + ", ".join(STEP_KINDS),
    "string_pattern_mismatch": "use letters, digits, `_` and `-`, starting with a letter",
}


#: how to write a top-level section that is a mapping, given as something else (a list)
_SECTION_HINTS = {
    "inputs": "name each input with its fields: `inputs: {q: {type: string}}`",
    "outputs": "name each output with its value: `outputs: {answer: ${steps.ID.output}}`",
    "models": "name each model alias with its config: `models: {default: {backend: local}}`",
    "tools": "name each tool with its function: `tools: {lookup: mytools:lookup}` (the "
             "module beside the workflow file)",
}

#: how to write an entry of a top-level section that was not given as a mapping
_MAPPING_HINTS = {
    "steps": "a step is a mapping: `- id: NAME`, then `kind:` and its other fields on the "
             "lines below, indented as `id:`",
    "inputs": "an input is a mapping of its fields, e.g. `NAME: {type: string}`",
    "outputs": "an output is a reference (`NAME: ${steps.ID.output}`) or a mapping of its "
               "fields (`from:`, `type:`...)",
    "models": "a model is a mapping of its fields, e.g. `ALIAS: {backend: simulated}`",
}


def _step_kind(data: Any, prefix: PathT, path: PathT) -> Any:
    """The ``kind:`` written at ``path`` of the document (``data`` sits at ``prefix``),
    None where there is none."""
    if path[:len(prefix)] != prefix:
        return None
    cur = data
    for key in path[len(prefix):]:
        cur = _item(cur, key)
    return cur.get("kind") if isinstance(cur, dict) else None


def _strip_tags(loc: tuple[str | int, ...]) -> PathT:
    """Pydantic puts the union tag after a step's index (`steps.3.tool.args`); drop it."""
    if len(loc) > 2 and loc[0] == "steps" and isinstance(loc[1], int) and loc[2] in STEP_KINDS:
        return (*loc[:2], *loc[3:])
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def _fields_at(path: PathT, prefix: PathT, data: Any,
              root: type[BaseModel] = WorkflowSpec) -> list[str]:
    """The fields (names and aliases) that the mapping at ``path`` of a document of
    ``root`` (a workflow) takes, to name the one an unknown field is close to; none where
    that cannot be told.

    :param data: the document's data at ``prefix`` (a part of ``path``).
    """
    kind: Any = root
    value: Any = None
    for depth, seg in enumerate(path):
        if depth == len(prefix):
            value = data
        kind = _one_model(kind, value)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found = next((f for n, f in kind.model_fields.items()
                          if seg in (n, f.alias)), None)
            if found is None:
                return []
            kind = found.annotation
        elif typing.get_origin(kind) in (dict, list):
            kind = typing.get_args(kind)[-1]
        else:
            return []
        value = _item(value, seg)
    if len(path) == len(prefix):
        value = data
    kind = _one_model(kind, value)
    if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
        return []
    return [f.alias or n for n, f in kind.model_fields.items()]


def _item(value: Any, seg: str | int) -> Any:
    if isinstance(value, dict):
        return value.get(seg)
    if isinstance(value, list) and isinstance(seg, int) and 0 <= seg < len(value):
        return value[seg]
    return None


def _one_model(kind: Any, value: Any) -> Any:
    """``kind`` with ``Annotated`` and ``| None`` taken off, and a union of models narrowed
    to the one whose ``kind:`` the value gives (else to its only model)."""
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) not in (typing.Union, types.UnionType):
        return kind
    members = [k for k in typing.get_args(kind) if isinstance(k, type)
               and issubclass(k, BaseModel)]
    others = [k for k in typing.get_args(kind) if k is not type(None) and k not in members]
    tag = value.get("kind") if isinstance(value, dict) else None
    for member in members:
        field = member.model_fields.get("kind")
        if field is not None and tag in typing.get_args(field.annotation):
            return member
    return members[0] if len(members) == 1 and not others else None


def pydantic_problems(exc: ValidationError, data: Any, smap: SourceMap,
                      prefix: PathT = (), root: type[BaseModel] = WorkflowSpec
                      ) -> list[Problem]:
    """Turn a pydantic ValidationError into located problems (`prefix`: where `data` sits
    in a document of `root`, a workflow unless a model config file is checked alone).

    A required field that is missing because it is misspelt (`Name:`, `promt:`) is one
    problem, the unknown field's, whose hint names the field meant."""
    problems = []
    errors = exc.errors(include_url=False)
    fields_meant: dict[tuple[PathT, str], str] = {}  # (mapping, unknown field) -> meant
    for err in errors:
        if err["type"] == "extra_forbidden":
            path = _strip_tags((*prefix, *err["loc"]))
            close = difflib.get_close_matches(str(path[-1]), _fields_at(
                path[:-1], prefix, data, root), n=1, cutoff=0.7)
            if close:
                fields_meant[(path[:-1], str(path[-1]))] = close[0]
            if path[-1] == "step" and _step_kind(data, prefix, path[:-1]) == "sample":
                # a map's body: its prompt is under `step:` (no spelling gives this pair)
                fields_meant[(path[:-1], "step")] = "prompt"
    for err in errors:
        path = _strip_tags((*prefix, *err["loc"]))
        # a mapping's bad key: named by the mapping (the message shows the key)
        owner = path[:-2] if len(path) >= 2 and path[-1] == "[key]" else path
        shown = ".".join(str(p) for p in owner) or "(top level)"
        kind = err["type"]
        hint = _HINTS.get(kind, "")
        if kind == "missing" and (path[:-1], str(path[-1])) in {
                (at, field) for (at, _), field in fields_meant.items()}:
            continue  # said as the misspelt field's problem
        if kind == "extra_forbidden":
            msg = (f"unknown field `{path[-1]}` at {shown}" if len(path) > 1
                   else f"unknown field `{path[-1]}`")
            close_one = fields_meant.get((path[:-1], str(path[-1])))
            if (path[-1], close_one) == ("step", "prompt"):  # a sample's, set above
                # "did you mean `stop`?" led astray
                hint = ("a sample step is itself the LLM call: give `prompt:`, `model:`, "
                        "`temperature:`... on the step, not under `step:`")
            elif close_one is not None:
                hint = f"did you mean `{close_one}`? Else remove it"
        elif kind == "union_tag_invalid":
            given = err["input"].get("kind") if isinstance(err.get("input"), dict) else None
            msg = (f"unknown step kind {given!r}" if given is not None
                   else f"{shown}: {err['msg']}")
            close = difflib.get_close_matches(str(given), STEP_KINDS, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}? Else " + hint
        elif kind == "union_tag_not_found":
            msg = f"{shown}: a step needs a `kind:`"
        elif kind == BOOL_NOT_NUMBER:
            msg = (f"{shown}: a number, not `{str(err.get('input')).lower()}` (YAML reads "
                   "true/false, yes/no and on/off as booleans)")
            hint = "write a number"
        elif kind == STRING_NOT_NUMBER:
            ctx = err.get("ctx") or {}
            msg = (f"{shown}: must be {ctx.get('expected', 'a number')}, got the string "
                   f"{shown_json(err.get('input'))}")
            hint = (f"write it without quotes (`{path[-1]}: {ctx['unquoted']}`): quoted, "
                    "YAML reads it as text" if "unquoted" in ctx
                    else f"write {ctx.get('expected', 'a number')}")
        elif kind in ("model_type", "model_attributes_type"):
            # pydantic names its class ("a valid dictionary or instance of InputSpec")
            msg = f"{shown}: must be a mapping of fields (got {shown_json(err.get('input'))})"
            hint = _MAPPING_HINTS.get(str(path[0]) if len(path) == 2 else "",
                                      "give its fields as `key: value` lines or `{key: value}`")
        else:
            value = err.get("input")
            msg = f"{shown}: {err['msg']}"
            if kind == "value_error":  # our validators' messages, less pydantic's prefix
                msg = f"{shown}: {err['msg'].removeprefix('Value error, ')}"
            if kind != "missing" and not isinstance(value, dict | list) and not (
                    kind == "value_error" and (_shown(value) in msg or shown_json(value) in msg)):
                msg += f" (got {shown_json(value)})"
            if kind == "literal_error" and isinstance(value, str):
                meant = difflib.get_close_matches(value, re.findall(
                    r"'([^']*)'", str(err.get("ctx", {}).get("expected", ""))), n=1, cutoff=0.5)
                if meant:
                    hint = f"did you mean {meant[0]!r}?"
        if path == ("name",) and kind == "string_pattern_mismatch":
            hint = "use letters, digits, `_`, `-` and `.`"
        if path == ("steps",) and kind == "list_type":
            hint = "`steps:` is a list: start each step with `- id: NAME`, then its `kind:`"
        if len(path) == 1 and kind == "dict_type" and str(path[0]) in _SECTION_HINTS:
            msg = f"`{path[0]}:` must be a mapping (got {shown_json(err.get('input'))})"
            hint = _SECTION_HINTS[str(path[0])]
        if not hint and err.get("input", 0) is None and kind.endswith("_type") and path:
            hint = f"`{path[-1]}:` has no value (YAML reads nothing as null): write one"
        if not hint and isinstance(err.get("input"), bool) and kind.endswith("_type"):
            # `id: yes`, `default: no`: text the YAML reader took for a boolean
            hint = ("YAML reads true/false, yes/no and on/off as booleans: quote the "
                    "text ('yes') to give it as text")
        at = path
        if kind == "value_error" and isinstance(err.get("input"), dict):
            # a model's own check ("`scorer` is used by best_of_n only") is about the first
            # field it names that the mapping gives: located there, not at its first line
            given = err["input"]
            named = next((n for n in re.findall(r"`(\w+)`", msg) if n in given), None)
            at = (*path, named) if named is not None else path
        problems.append(smap.problem(at, msg, hint))
    return problems


_MODEL_FIELDS = frozenset(ModelConfig.model_fields)


def model_config_problem(data: dict[str, Any], smap: SourceMap) -> Problem | None:
    """The one problem of a model config given where a workflow belongs (`ponder run
    model.yaml`, a file written for `--model NAME=FILE`), else ``None``: listing each of
    its fields as unknown to a workflow would hide what happened."""
    if "steps" in data or "backend" not in data or not set(data) <= _MODEL_FIELDS:
        return None
    return smap.problem(
        (), "this file is a model config (`backend:`, `options:`), not a workflow: it has no "
        "`steps:`", "give it to a workflow's run as `--model NAME=FILE`, or put it under the "
        "workflow's `models:`")


def load_spec_data(data: Any, smap: SourceMap) -> tuple[WorkflowSpec | None, list[Problem]]:
    """Validate parsed data into a WorkflowSpec, collecting located problems."""
    if not isinstance(data, dict):
        return None, [smap.problem((), "a workflow must be a mapping with `name:` and `steps:`")]
    taken = model_config_problem(data, smap)
    if taken is not None:
        return None, [taken]
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        return None, pydantic_problems(exc, data, smap)
    return spec, []


def load_yaml(source: str | Path, *, text: str | None = None) -> tuple[WorkflowSpec, SourceMap]:
    """Load a workflow from a file (or from `text`, naming it `source`).

    :raises ValidationFailed: with every located problem.
    """
    file = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except IsADirectoryError:
            raise ValidationFailed([Problem(f"cannot read {file}: it is a folder",
                                            "name the workflow's YAML file (such as "
                                            f"{Path(source) / 'NAME.yaml'})", file)]) from None
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise ValidationFailed([Problem(f"cannot read {file}: {why}",
                                            "check the path", file)]) from None
    data, smap, problems = parse_yaml(text, file)
    if data is None:
        raise ValidationFailed(problems)
    spec, more = load_spec_data(data, smap)
    problems += more
    if problems or spec is None:
        raise ValidationFailed(problems)
    return spec, smap


def find_workflow(ref: str, base_dir: Path, workflows: Mapping[str, Any]
                  ) -> tuple[WorkflowSpec, SourceMap | None, Path]:
    """The workflow a ``workflow:`` reference names, as a run finds it: a registered
    name (a ``Workflow`` or a spec), else a YAML file relative to ``base_dir``.

    :returns: its spec, its source map (``None`` when registered) and the folder its
        own references are relative to.
    :raises ValidationFailed: when the file cannot be read or is not a valid workflow.
    """
    registered = workflows.get(ref)
    if registered is not None:
        return (registered.spec if hasattr(registered, "spec") else registered), None, base_dir
    path = base_dir / ref
    if is_file(path):
        path = path.resolve()
    spec, smap = load_yaml(path)
    return spec, smap, path.parent


def path_text(path: Iterable[str | int]) -> str:
    """A path inside a workflow as a message names it: ``args.x``, ``cases[1].when``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def is_file(path: Path) -> bool:
    """Whether ``path`` names a file; False for a path no file can have (a NUL in it)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def spec_to_data(spec: WorkflowSpec, mode: str = "json") -> dict[str, Any]:
    """A spec as plain data without the default values it was not given; validating it
    gives an equal model, with the same fields set.

    A default written out is kept: whether a field was given is meaning of its own (a
    static plan is bounded only by a ``max_plan_steps`` set on its step; an input with
    ``default: null`` is optional), and a resumed or replayed run rebuilds its spec from
    this data.

    :param mode: ``"json"`` for JSON-safe data (events), ``"python"`` to keep floats such
        as infinity (YAML can write them).
    """
    lean = spec.model_dump(mode=mode, by_alias=True, exclude_defaults=True)
    data = _keep_given(lean, spec.model_dump(mode=mode, by_alias=True, exclude_unset=True))
    data = {"name": spec.name, **data}
    for step, dumped in zip(spec.steps, data.get("steps", []), strict=False):
        dumped["kind"] = step.kind  # the union's tag, even where it equals its default
        dumped.setdefault("id", step.id)
    return data


def _keep_given(lean: Any, given: Any) -> Any:
    """``lean`` (a dump without defaults) with the fields ``given`` (a dump of the set
    fields) holds besides: the defaults that were written out."""
    if isinstance(lean, dict) and isinstance(given, dict):
        keys = [*given, *(k for k in lean if k not in given)]
        return {k: _keep_given(lean[k], given[k]) if k in lean and k in given
                else lean[k] if k in lean else given[k] for k in keys}
    if isinstance(lean, list) and isinstance(given, list) and len(lean) == len(given):
        return [_keep_given(a, b) for a, b in zip(lean, given, strict=True)]
    return lean


def dump_yaml(spec: WorkflowSpec) -> str:
    """Write a spec as YAML; loading it back gives an equal model."""
    return yaml.safe_dump(spec_to_data(spec, mode="python"), sort_keys=False, allow_unicode=True,
                          width=100)
