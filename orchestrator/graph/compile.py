"""Compile a WorkflowSpec into a validated DAG. Pure: no I/O beyond `Path.exists`.

Validation collects every problem at once (never stops at the first), each located
in the source file with a one-line hint.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import BaseModel, ValidationError

from orchestrator.errors import Problem, TemplateRenderError, ValidationFailed, shown
from orchestrator.graph.allowlist import Allowlist, SubworkflowLoader
from orchestrator.spec import templates
from orchestrator.spec.kinds_fanout import ONLINE_REDUCERS, judge_name_clash
from orchestrator.spec.loader import SourceMap, is_file
from orchestrator.spec.models import (
    BranchStep,
    InputSpec,
    LLMStep,
    MapBody,
    MapStep,
    ToolStep,
    WorkflowSpec,
    WorkflowStep,
    json_kind,
    json_path,
    json_type_ok,
    non_finite_at,
    shown_json,
)
from orchestrator.spec.refs import REF_RE, Ref, iter_refs, parse_ref
from orchestrator.spec.schema_check import schema_definition_problem, schema_problem

FANOUT_KINDS = ("map", "spawn", "sample")

#: (planner, a plan step's options) -> problems, each (path inside the options, message)
PlannerOptionCheck = Callable[[str, dict[str, Any]], list[tuple[tuple[str | int, ...], str]]]
#: (planner, a plan step's options) -> the steps the planner adds whatever happens
PlannerSteps = Callable[[str, dict[str, Any]], list[Any]]
# the pydantic model of a known tool's arguments (``Registry.tool_arguments``); None when
# the tool's signature is not known here (a workflow's own tool, not imported to validate)
ToolArguments = Callable[[str], "type[BaseModel] | None"]

#: finds the (line, column) of a problem in a value (``SourceMap.value_spot``); (0, 0)
#: when not known
Spot = Callable[[], tuple[int, int]]

# Default estimates for critical-path priority before any latency is observed.
DECODE_S_PER_TOKEN = 0.02
PREFILL_S_PER_CHAR = 0.00005
TOOL_S = 0.01


@dataclass(slots=True)
class Node:
    """One step of the compiled graph."""

    id: str
    kind: str
    step: Any
    deps: frozenset[str]
    pool: str
    cost_s: float
    line: int = 0


@dataclass
class CompiledGraph:
    """A validated workflow: nodes in file order and the dependency DAG."""

    spec: WorkflowSpec
    source: SourceMap
    base_dir: Path
    nodes: dict[str, Node]
    dag: nx.DiGraph
    branch_targets: dict[str, set[str]] = field(default_factory=dict)
    #: what the engine derives from the graph once and reuses on every run (step plans
    #: in dependency order, compiled references, the spec as data); see runtime.engine
    run_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: the workflow's own tools (its ``tools:``, imported): name -> ToolSpec, served to its
    #: runs over the registry's (see runtime.engine.compile_graph)
    own_tools: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def remaining_critical_path(self) -> dict[str, float]:
        """For each step: its cost plus the longest cost chain after it."""
        out: dict[str, float] = {}
        for nid in reversed(list(nx.topological_sort(self.dag))):
            succ = self.dag.successors(nid)
            out[nid] = self.nodes[nid].cost_s + max((out[s] for s in succ), default=0.0)
        return out

    def critical_path_s(self) -> float:
        return max(self.remaining_critical_path().values(), default=0.0)

    def step_path(self, step_id: str, owner: str | None = None,
                  home: tuple[str, tuple[str | int, ...]] | None = None
                  ) -> tuple[str | int, ...] | None:
        """Where the workflow file defines step ``step_id``: its path in the spec
        (``("steps", 3)``); for a map's item, the map's body (``owner`` the map); for a
        step added at run time from another's definition, ``home`` (that step's id, the
        path in it). None for a step no file holds (a planner's)."""
        index = {s.id: i for i, s in enumerate(self.spec.steps)}
        if step_id in index:
            return ("steps", index[step_id])
        if owner is not None and owner in index:
            return ("steps", index[owner], "step")
        if home is not None and home[0] in index:
            return ("steps", index[home[0]], *home[1])
        return None

    def locate_template_error(self, exc: TemplateRenderError, step_id: str, step: Any,
                              owner: str | None = None) -> TemplateRenderError:
        """A template's render error, its message led by the step, the field and the
        file:line of the template's failing line (``step 'b' prompt (flow.yaml:14)``).

        :param step_id: the step whose template failed; ``step`` its definition.
        :param owner: the map a step's item belongs to (its template is the map body's).

        A step added at run time whose templates are another step's (a join's judge, a
        spawn's child) says whose: ``step.template_home`` is ``(step id, path in it)``.
        """
        field = next((f for f, src in _template_fields(step) if src == exc.source), "a")
        base = self.step_path(step_id, owner, getattr(step, "template_home", None))
        path = (*base, field) if base is not None else None
        where = f"step {step_id!r} {field} template"
        line = (template_line(self.source, path, exc.source, exc.line, exc.expression)
                if path else 0)
        if line:
            where += f" ({self.source.file}:{line})"
        elif exc.line:
            where += f" (template line {exc.line})"
        return exc.located(where)


def template_line(smap: SourceMap, path: tuple[str | int, ...], source: str,
                  line_in_template: int, needle: str = "",
                  recheck: Callable[[str], int] | None = None) -> int:
    """The file line of a template's line (see :meth:`SourceMap.value_line`)."""
    return smap.value_line(path, source, line_in_template, needle, recheck)


def pool_for(kind: str, step: Any) -> str:
    """The executor pool a step waits in for a slot (compiled steps and steps added at
    run time alike)."""
    if kind == "llm":
        return f"llm:{step.model}"
    if kind in ("map", "branch"):
        return "control"
    if kind == "sample":
        # the sample operator waits on its requests, which run as llm-pool children: were
        # it in that pool too, a pool of one slot would deadlock
        return f"llm:{step.model}" if step.is_request else "sample"
    return kind


def estimate_cost(step: Any) -> float:
    """Rough seconds a step takes, from its token budget (refined at run time)."""
    kind = step.kind
    if kind == "llm":
        return float(step.max_tokens * DECODE_S_PER_TOKEN + len(step.prompt) * PREFILL_S_PER_CHAR)
    if kind == "tool":
        return TOOL_S
    if kind == "map":
        return estimate_cost(step.step.to_step("_")) if isinstance(step.step, MapBody) else TOOL_S
    if kind == "workflow":
        return 1.0
    if kind in ("plan", "spawn", "sample"):
        return getattr(step, "max_tokens", 256) * DECODE_S_PER_TOKEN * 2
    return 0.0


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_CHAR_RE = re.compile(r"[A-Za-z0-9_\-]")
_STEPS_DOT_RE = re.compile(r"steps\.")

#: the names a spawn's child is rendered with (executors/fanout/spawn.py), and a join's
#: scorer or check (executors/fanout/_score.py), besides `inputs` and `steps`
_SPAWN_CHILD_NAMES = ("message", "context", "index", "depth")
_SCORER_NAMES = ("candidate", "answer", "index")


def _template_fields(step: Any) -> list[tuple[str, str]]:
    if isinstance(step, LLMStep | MapBody):
        names: tuple[str, ...] = ("prompt", "system")
    else:
        names = getattr(step, "template_fields", ())
    return [(n, getattr(step, n)) for n in names if isinstance(getattr(step, n, None), str)]


def _value_fields(step: Any) -> list[tuple[str, Any]]:
    if isinstance(step, ToolStep):
        return [("args", step.args)]
    if isinstance(step, WorkflowStep):
        return [("inputs", step.inputs)]
    if isinstance(step, MapStep):
        return [("over", step.over)]
    return [(n, getattr(step, n)) for n in getattr(step, "resolved_fields", ())]


def _located_refs(value: str) -> list[tuple[Ref | ValueError, str, int]]:
    """The references of a string (or their parse errors), each with its raw text and the
    line of the string it starts on (1-based)."""
    found: list[tuple[Ref | ValueError, str, int]] = []
    for m in REF_RE.finditer(value):
        line = value.count("\n", 0, m.start()) + 1
        try:
            found.append((parse_ref(m.group(1)), m.group(0), line))
        except ValueError as exc:
            found.append((exc, m.group(0), line))
    return found


def step_dependencies(step: Any) -> set[str]:
    """Step ids a step refers to (templates, `${...}` values, `after`, `of`), unchecked.

    Used for steps added at run time by planners and fan-outs.
    """
    from orchestrator.spec.refs import step_deps

    deps: set[str] = set(step.after)
    for _, src in _template_fields(step):
        deps |= {r.name for r in templates.template_refs(src) if r.root == "steps"}
    for _, value in _value_fields(step):
        deps |= step_deps(value)
    if step.kind == "join":
        deps.add(step.of)
    if step.kind == "map":  # what its body reads, as map_body_deps finds for a declared map
        body = step.step
        for _, src in _template_fields(body):
            deps |= {r.name for r in templates.template_refs(src) if r.root == "steps"}
        deps |= step_deps(body.args) | step_deps(body.inputs)
    return deps


class _Checker:
    def __init__(self, spec: WorkflowSpec, smap: SourceMap, tool_names: set[str],
                 base_dir: Path, workflow_names: set[str],
                 planner_names: set[str] | None = None,
                 planner_options: PlannerOptionCheck | None = None,
                 planner_steps: PlannerSteps | None = None,
                 load_workflow: SubworkflowLoader | None = None,
                 tool_arguments: ToolArguments | None = None,
                 models_given: frozenset[str] = frozenset()) -> None:
        self.planner_names = planner_names
        self.models_given = models_given
        self.tool_arguments = tool_arguments
        self.planner_options = planner_options
        self.planner_steps = planner_steps
        self.load_workflow = load_workflow
        self.spec = spec
        self.smap = smap
        self.tool_names = tool_names
        self.base_dir = base_dir
        self.workflow_names = workflow_names
        self.problems: list[Problem] = []
        self.index: dict[str, int] = {}
        self.steps_by_id: dict[str, Any] = {}
        # fan-out id -> its joins (id, reducer), in the file's order
        self.fanout_joins: dict[str, list[tuple[str, str]]] = {}
        #: the position of the step being checked when it is not the first of its id (a
        #: duplicate): what is above it, not above the first, may be referred to
        self.position: int | None = None
        #: :meth:`close_step`'s tables, once asked
        self._close: tuple[dict[str, str], dict[str, str]] | None = None
        #: :meth:`hyphenated_in`'s ids holding `-`, and their lengths, once asked
        self._hyphenated: tuple[set[str], list[int]] | None = None
        for i, s in enumerate(spec.steps):  # the first of duplicate ids counts
            self.index.setdefault(s.id, i)
            self.steps_by_id.setdefault(s.id, s)

    def add(self, path: tuple[str | int, ...], message: str, hint: str = "",
            at: Spot | None = None) -> None:
        """Report a problem at ``path``, or where ``at`` finds it (a line and column)."""
        problem = self.smap.problem(path, message, hint)
        line, column = at() if at is not None and problem.line else (0, 0)
        if line:
            problem = dataclasses.replace(problem, line=line, column=column)
        self.problems.append(problem)

    def close_step(self, name: str) -> str | None:
        """The first step id (in the file's order) that is ``name`` but for case or starts
        with its first three characters: the one an unknown reference may have meant.

        Looked up in two tables built on the first call, not by a scan of every id: a
        file with a bad reference in each of its n steps took n² comparisons."""
        if self._close is None:
            by_case: dict[str, str] = {}
            by_start: dict[str, str] = {}
            for sid in self.index:  # the file's order: the first of each key is kept
                by_case.setdefault(sid.lower(), sid)
                for n in range(min(len(sid), 3) + 1):
                    by_start.setdefault(sid[:n], sid)
            self._close = by_case, by_start
        by_case, by_start = self._close
        found = [s for s in (by_case.get(name.lower()), by_start.get(name[:3])) if s is not None]
        return min(found, key=self.index.__getitem__, default=None)

    # references ---------------------------------------------------------------
    def check_ref(self, path: tuple[str | int, ...], me: str | None, root: str, name: str,
                  sub: tuple[str | int, ...], shown: str, local_names: set[str],
                  at: Spot | None = None) -> str | None:
        """Check one reference; return the step id it depends on, if any.

        :param at: finds where the reference is, when not at ``path``'s own line (a line
            of a value that spans lines): asked only for a problem, since it may parse the
            document again."""
        if root == "inputs":
            if name not in self.spec.inputs:
                known = ", ".join(sorted(self.spec.inputs))
                self.add(path, f"unknown input {name!r} in `{shown}`",
                         f"declare it under `inputs:` (declared: {known})" if known else
                         "declare it under `inputs:` (the workflow declares none)", at)
            return None
        if root != "steps":
            if root not in local_names:
                close = difflib.get_close_matches(root, sorted(local_names), n=1)
                self.add(path, f"unknown name {root!r} in `{shown}`",
                         f"did you mean {close[0]!r}?" if close else
                         "use inputs.NAME or steps.ID.output" + (
                             " (inside a map body also `item`/`index`)" if not local_names
                             else ", or here " + " or ".join(f"`{n}`" for n in
                                                            sorted(local_names))), at)
            return None
        if name not in self.index:
            meant = self.close_step(name)
            self.add(path, f"unknown step {name!r} in `{shown}`",
                     f"did you mean {meant!r}?" if meant is not None else
                     "reference an existing step id", at)
            return None
        if me is not None and name == me:
            self.add(path, f"step {me!r} refers to itself in `{shown}`",
                     "a step can only use outputs of other steps", at)
            return None
        if me is not None and self.index[name] > (self.index[me] if self.position is None
                                                  else self.position):
            self.add(path, f"forward reference: step {me!r} uses {name!r}, which is defined "
                     "later", f"move step {name!r} above {me!r}", at)
            # still a dependency, so that cycles are named too
        self.check_schema_path(path, name, sub, shown, at)
        return name

    def check_schema_path(self, path: tuple[str | int, ...], target: str,
                          sub: tuple[str | int, ...], shown: str,
                          at: Spot | None = None, step: Any = None) -> None:
        """``sub`` is a path the output schema of step ``target`` (of the workflow, or
        ``step`` when given: one a planner adds) declares, where it declares fields."""
        step = self.steps_by_id[target] if step is None else step
        schema = getattr(step, "output_schema", None)
        if not schema or not sub:
            return
        cur: Any = schema
        for seg in sub:
            if not isinstance(cur, dict):
                return
            if isinstance(seg, int):
                cur = cur.get("items")
                continue
            props = cur.get("properties")
            if props is None:
                return
            if seg not in props:
                self.add(path, f"`{shown}`: the output schema of {target!r} has no field {seg!r}",
                         "fields there: " + (", ".join(props) or "none"), at)
                return
            cur = props[seg]

    def refs_in_value(self, path: tuple[str | int, ...], me: str | None, value: Any,
                      local_names: set[str]) -> set[str]:
        """The steps the references of a value (nested lists and mappings too) read, each
        checked, a problem located at its own key and at its line of a string on several."""
        deps: set[str] = set()
        if isinstance(value, dict):
            for key, item in value.items():
                deps |= self.refs_in_value((*path, key), me, item, local_names)
        elif isinstance(value, list | tuple):
            for j, item in enumerate(value):
                deps |= self.refs_in_value((*path, j), me, item, local_names)
        elif isinstance(value, str):
            for ref, raw, line in _located_refs(value):
                at = functools.partial(self.smap.value_spot, path, value, line, raw)
                if isinstance(ref, ValueError):
                    self.add(path, f"bad reference {raw}: {ref}",
                             "write ${inputs.NAME} or ${steps.ID.output.FIELD}", at)
                    continue
                dep = self.check_ref(path, me, ref.root, ref.name, ref.path, raw, local_names,
                                     at)
                if dep:
                    deps.add(dep)
        return deps

    def refs_in_template(self, path: tuple[str | int, ...], me: str | None, source: str,
                         local_names: set[str], *, expression: bool = False) -> set[str]:
        if not self.template_problems(path, source, expression=expression):
            return set()
        deps: set[str] = set()
        split = self.hyphenated_ids(path, source)
        refs = templates.template_refs(source, expression=expression)
        for ref in refs:
            if ref.root not in ("steps", "inputs") or (ref.root == "steps"
                                                        and ref.name in split):
                continue
            member = [] if ref.member is None else [str(ref.member)]
            shown = ".".join([ref.root, ref.name, *member, *map(str, ref.path)])
            at = functools.partial(self.smap.value_spot, path, source, ref.line, ref.name)
            if ref.root == "steps" and ref.member is not None and ref.member != "output":
                # `steps.a.outptu` renders nothing: Jinja2 fails on it at run time
                self.add(path, f"`steps.{ref.name}.{ref.member}`: a step's value is "
                         f"`steps.{ref.name}.output`", f"write steps.{ref.name}.output", at)
                continue
            dep = self.check_ref(path, me, ref.root, ref.name, ref.path, shown, local_names,
                                 at)
            if dep:
                deps.add(dep)
        # a name the template neither defines nor is given fails its render at run time
        lines = {r.root: r.line for r in reversed(refs) if not r.name}  # its first line
        for name in sorted(templates.undeclared_names(source, expression=expression)
                           - {"steps", "inputs"} - split):
            self.check_ref(path, me, name, "", (), name, local_names,
                           functools.partial(self.smap.value_spot, path, source,
                                             lines.get(name, 0), name))
        return deps

    def template_problems(self, path: tuple[str | int, ...], source: str, *,
                          expression: bool = False) -> bool:
        """Report a template's syntax error, or each `{{ steps }}`-like value it prints,
        at its file line; whether the template parses (its references can be read)."""
        issue = (templates.check_expression(source) if expression else templates.check(source))
        if issue is not None:
            line, col = self.smap.locate(path)

            def recheck(text: str) -> int:  # the issue's line in the template laid out anew
                again = (templates.check_expression(text) if expression
                         else templates.check(text))
                return again.line if again is not None else 0

            found = template_line(self.smap, path, source, issue.line, recheck=recheck)
            if line and issue.line and found != line:
                line, col = found, 1
            problem = self.smap.problem(
                path, f"template error: {issue.message}" if issue.hint
                else f"template syntax error: {issue.message}",
                issue.hint or "check `{{ }}`/`{% %}` pairs and quotes")
            if problem.line:  # else a step added in Python, which no line holds
                problem = dataclasses.replace(problem, line=line, column=col)
            self.problems.append(problem)
            return False
        if not expression:
            for line_no, what in templates.value_misuses(source):
                self.add(path, f"template error: {what}", "a template prints text",
                         functools.partial(self.smap.value_spot, path, source, line_no,
                                           what.split("`")[1]))
        return True

    def hyphenated_ids(self, path: tuple[str | int, ...], source: str) -> set[str]:
        """Each step id holding `-` that a template reads as `steps.a-b` (Jinja2 reads a
        subtraction, `steps.a - b`), a problem; returns the names Jinja2 reads out of
        those ids (`a`, `b`), which are not problems of their own."""
        text = templates.to_jinja(source)  # `${steps.a-b.output}` is a subscript there
        split: set[str] = set()
        for sid in self.hyphenated_in(text):
            at = text.find(f"steps.{sid}")
            if _NAME_CHAR_RE.match(text, at + len(f"steps.{sid}")):
                continue
            parts = [m[0] for m in (_NAME_RE.match(part) for part in sid.split("-")) if m]
            split |= {n for n in parts if n not in self.index}
            line = text.count("\n", 0, at) + 1
            self.add(path, f"`steps.{sid}` reads as a subtraction in Jinja2 "
                     f"(`steps.{' - '.join(sid.split('-'))}`)",
                     f"write steps['{sid}'].output, or ${{steps.{sid}.output}}",
                     functools.partial(self.smap.value_spot, path, source, line,
                                       f"steps.{sid}"))
        return split

    def hyphenated_in(self, text: str) -> list[str]:
        """The step ids holding `-` that ``text`` writes after a `steps.`, in the file's
        order.

        Found from each `steps.` of the text, not by looking for every id in it: that made
        each template cost as much as the workflow's number of steps (n LLM steps: n²)."""
        if self._hyphenated is None:
            ids = {sid for sid in self.index if "-" in sid}
            self._hyphenated = ids, sorted({len(sid) for sid in ids})
        ids, lengths = self._hyphenated
        found: set[str] = set()
        if ids:
            for m in _STEPS_DOT_RE.finditer(text):
                found.update(t for t in (text[m.end():m.end() + n] for n in lengths) if t in ids)
        return sorted(found, key=self.index.__getitem__)

    # per step -------------------------------------------------------------------
    def step_deps(self, i: int, step: Any) -> set[str]:
        base: tuple[str | int, ...] = ("steps", i)
        deps: set[str] = set()
        for fname, src in _template_fields(step):
            deps |= self.refs_in_template((*base, fname), step.id, src, set())
        for fname, value in _value_fields(step):
            deps |= self.refs_in_value((*base, fname), step.id, value, set())
        for j, dep in enumerate(step.after):
            deps.add(dep) if self.check_ref((*base, "after", j), step.id, "steps", dep, (),
                                            dep, set()) else None
        self.check_names(base, step)
        self.check_lists(base, step)
        self.check_finite(base, step)
        if step.kind == "join":
            deps |= self.join_deps(base, step)
        if isinstance(step, BranchStep):
            for c, case in enumerate(step.cases):
                deps |= self.refs_in_template((*base, "cases", c, "when"), step.id, case.when,
                                              set(), expression=True)
                self.check_targets((*base, "cases", c, "then"), step, case.then)
            self.check_targets((*base, "default"), step, step.default)
        if isinstance(step, MapStep):
            deps |= self.map_body_deps((*base, "step"), step)
        return deps

    def check_names(self, base: tuple[str | int, ...], step: Any) -> None:
        """The tools, sub-workflows, models and planner ``step`` names (its map body, join
        scorer and plan included) exist."""
        if isinstance(step, ToolStep):
            self.check_tool((*base, "tool"), step.tool)
            self.check_tool_args(base, step.tool, step.args)
            self.check_not_jinja((*base, "args"), step.args, set())
        if isinstance(step, WorkflowStep):
            self.check_not_jinja((*base, "inputs"), step.inputs, set())
        if isinstance(step, WorkflowStep) or (step.kind == "spawn" and step.workflow is not None):
            self.check_workflow((*base, "workflow"), step.workflow)
        if isinstance(step, LLMStep) or (step.kind in ("plan", "spawn", "sample")):
            self.check_model((*base, "model"), step.model)
        if isinstance(step, LLMStep):
            self.check_output_schema((*base, "output_schema"), step.output_schema)
        if step.kind == "join":
            self.check_join_fields(base, step)
        if step.kind in ("spawn", "join"):
            self.check_child_templates(base, step)
        if step.kind == "plan":
            self.check_plan(base, step)
        if isinstance(step, MapStep):
            body, path = step.step, (*base, "step")
            if body.kind == "tool" and body.tool:
                self.check_tool((*path, "tool"), body.tool)
                self.check_tool_args(path, body.tool, body.args or {})
            for field in ("args", "inputs"):
                self.check_not_jinja((*path, field), getattr(body, field, None) or {},
                                     {step.item_var})
            if body.kind == "workflow" and body.workflow:
                self.check_workflow((*path, "workflow"), body.workflow)
            if body.kind == "llm":
                self.check_model((*path, "model"), body.model)
                self.check_output_schema((*path, "output_schema"), body.output_schema)

    def check_child_templates(self, base: tuple[str | int, ...], step: Any) -> None:
        """The templates and references a fan-out's children and a join's scorers are
        rendered with, checked with the names they get (a spawn child: ``message``,
        ``context``, ``index``, ``depth``; a scorer: ``candidate``, ``answer``, ``index``,
        and a map item's item variable when it judges a map's items):
        an unknown step or name failed each child when it ran, an unknown step as an
        internal error. The steps they read are not the step's dependencies (its children
        wait for them when they are added), so only the problems are kept."""
        if step.kind == "spawn":
            local = set(_SPAWN_CHILD_NAMES)
            if step.workflow is not None:
                self.refs_in_value((*base, "inputs"), step.id, step.inputs, local)
                self.check_not_jinja((*base, "inputs"), step.inputs, local)
                return
            for fname in ("prompt", "system"):
                source = getattr(step, fname)
                if isinstance(source, str):
                    self.refs_in_template((*base, fname), step.id, source, local)
            return
        judged = self.steps_by_id.get(step.of)
        if isinstance(judged, MapStep):
            clash = judge_name_clash(step, judged.id, judged.item_var)
            if clash is not None:
                self.add(("steps", self.index[judged.id], "as"), *clash)
        for name in ("scorer", "check"):
            scorer = getattr(step, name)
            if scorer is None:
                continue
            local = set(_SCORER_NAMES)
            if isinstance(judged, MapStep):  # a judge sees the item it judges the answer to
                local.add(judged.item_var)
            if scorer.tool is not None:
                self.refs_in_value((*base, name, "args"), step.id, scorer.args, local)
                self.check_not_jinja((*base, name, "args"), scorer.args, local)
            else:
                self.refs_in_template((*base, name, "prompt"), step.id, scorer.prompt, local)

    def check_finite(self, base: tuple[str | int, ...], step: Any) -> None:
        """No field written in a step holds NaN or Infinity (``.nan``, ``.inf`` in YAML;
        a float in the SDK): the run records its workflow and each step's input as JSON,
        which has no such number (the record says null), so a replay or resume would pass
        another value than the run did. Refused in the words the run's inputs are."""
        found = non_finite_at(step, key=str, models=True)
        if found is not None:
            path, number = found
            where = json_path(path).lstrip(".")
            self.add((*base, *path), f"{step.kind} {step.id!r}: {where} is {number}, which "
                     "JSON has no number for", "write a finite number, or leave the value out")

    def check_lists(self, base: tuple[str | int, ...], step: Any, typed: bool = True) -> None:
        """A map's ``over`` and a spawn's ``messages`` are lists, or one reference to a
        list: anything else fails the step when it runs. ``typed``: a reference to what
        the workflow declares is not a list is one (not for a plan's steps, whose ids
        may hide the workflow's)."""
        if isinstance(step, MapStep):
            field_name, value = "over", step.over
        elif step.kind == "spawn" and step.messages is not None:
            field_name, value = "messages", step.messages
        else:
            return
        if isinstance(value, list):
            return
        whole = REF_RE.fullmatch(value.strip()) if isinstance(value, str) else None
        if whole is None:
            self.add((*base, field_name), f"{step.kind} {step.id!r}: `{field_name}` must be "
                     f"a list or a reference to one, got {json_kind(value)} "
                     f"{shown_json(value)}",
                     "write a YAML list, or one reference such as ${steps.ID.output}")
            return
        declared = self.declared_type(whole.group(1)) if typed else None
        if declared is not None and declared not in ("array", "any"):
            self.add((*base, field_name), f"{step.kind} {step.id!r}: `{field_name}` must be "
                     f"a list, and {value.strip()} is declared {declared}",
                     "refer to a list (an input of type: array, a field an output_schema "
                     "declares an array), or write a YAML list")

    def declared_type(self, text: str) -> str | None:
        """The JSON type the workflow declares for a reference's value (``${inputs.X}``:
        the input's ``type``; ``${steps.ID.output...}``: what the step's ``output_schema``
        says there), None where it says none (or the reference is not one)."""
        try:
            ref = parse_ref(text)
        except ValueError:
            return None
        if ref.root == "inputs":
            decl = self.spec.inputs.get(ref.name)
            if decl is None or ref.path:
                return None
            return str(decl.type)
        if ref.root != "steps" or ref.name not in self.steps_by_id:
            return None
        cur: Any = getattr(self.steps_by_id[ref.name], "output_schema", None)
        for seg in ref.path:
            if not isinstance(cur, dict):
                return None
            cur = (cur.get("items") if isinstance(seg, int)
                   else (cur.get("properties") or {}).get(seg))
        found = cur.get("type") if isinstance(cur, dict) else None
        return found if isinstance(found, str) else None

    def join_deps(self, base: tuple[str | int, ...], step: Any) -> set[str]:
        """A join depends on its fan-out, which must be a map, spawn or sample step."""
        if not self.check_ref((*base, "of"), step.id, "steps", step.of, (), step.of, set()):
            return set()
        target = self.steps_by_id[step.of]
        if target.kind not in FANOUT_KINDS:
            declared = self.smap.step_kinds.get(self.index[step.of], target.kind)
            if declared == target.kind:  # else the fan-out did not validate: said already
                article = "an" if target.kind == "llm" else "a"  # said "el-el-em"
                self.add((*base, "of"), f"join {step.id!r} names {step.of!r}, {article} "
                         f"{target.kind} step, not a fan-out",
                         "name a map, spawn or sample step")
        else:
            self.check_second_join(base, step)
            self.check_join_counts(base, step, target)
        return {step.of}

    def check_join_counts(self, base: tuple[str | int, ...], step: Any, fanout: Any) -> None:
        """A join's counts of children are at most the children its fan-out starts, where
        the workflow says how many: first_finish's ``first`` (it would never stop),
        ``min_successes`` (the join would always fail) and adaptive_vote's ``min_n`` when
        given (its rule could never be met; one above ``max_n`` is reported as such)."""
        children = _static_children(fanout)
        if children is None:
            return
        counts: list[tuple[str, int]] = []
        if step.reducer == "first_finish":
            counts.append(("first", step.first))
        if step.policy == "min_successes":
            counts.append(("min_successes", step.min_successes))
        if step.reducer == "adaptive_vote" and "min_n" in step.model_fields_set \
                and step.min_n <= step.max_n:
            counts.append(("min_n", step.min_n))
        for name, value in counts:
            if value > children:
                self.add((*base, name), f"join {step.id!r}: {name} {value} is more than the "
                         f"{children} child{'' if children == 1 else 'ren'} {step.of!r} starts",
                         f"use {name} <= {children}, or start more children" if children
                         else f"give {step.of!r} something to fan out over")

    def check_second_join(self, base: tuple[str | int, ...], step: Any) -> None:
        """A fan-out with a first_finish or adaptive_vote join has no other join: that
        reducer cancels the children it does not need (or never starts them), so another
        join would reduce only the few it left (a vote of one sample)."""
        joins = self.fanout_joins.setdefault(step.of, [])
        online = [(j, r) for j, r in joins if r in ONLINE_REDUCERS]
        joins.append((step.id, step.reducer))
        if step.reducer in ONLINE_REDUCERS and online:
            self.add((*base, "reducer"), f"fan-out {step.of!r} already has the "
                     f"{online[0][0]!r} join, whose reducer also acts while children run",
                     "give a fan-out at most one first_finish/adaptive_vote join")
        elif online or (step.reducer in ONLINE_REDUCERS and joins[:-1]):
            (cutter, how), other = ((online[0], step.id) if online
                                    else ((step.id, step.reducer), joins[0][0]))
            self.add((*base, "reducer"), f"joins {other!r} and {cutter!r} both join fan-out "
                     f"{step.of!r}, and {cutter!r} ({how}) "
                     + ("cancels the children it does not need" if how == "first_finish"
                        else "starts only the children it needs")
                     + f": {other!r} would reduce only the children {cutter!r} left",
                     f"give {step.of!r} one join, or fan out again for {other!r}")

    def check_join_fields(self, base: tuple[str | int, ...], step: Any) -> None:
        """The tools and model aliases a join's scorer or check names; adaptive_vote's
        sample bounds."""
        for name in ("scorer", "check"):
            scorer = getattr(step, name)
            if scorer is None:
                continue
            if scorer.tool is not None:
                self.check_tool((*base, name, "tool"), scorer.tool)
            if scorer.llm is not None:
                self.check_model((*base, name, "llm"), scorer.llm)
        if step.reducer == "adaptive_vote" and step.min_n > step.max_n:
            self.add((*base, "min_n"), f"join {step.id!r}: min_n {step.min_n} is greater than "
                     f"max_n {step.max_n}", "adaptive_vote samples at most max_n: make "
                     "min_n <= max_n")

    def map_body_deps(self, path: tuple[str | int, ...], step: MapStep) -> set[str]:
        body = step.step
        local = {step.item_var, "index"}
        deps: set[str] = set()
        for fname, src in _template_fields(body):
            deps |= self.refs_in_template((*path, fname), step.id, src, local)
        deps |= self.refs_in_value((*path, "args"), step.id, body.args, local)
        deps |= self.refs_in_value((*path, "inputs"), step.id, body.inputs, local)
        return deps

    def check_plan(self, base: tuple[str | int, ...], step: Any) -> None:
        for j, name in enumerate(step.tools):
            if name not in self.tool_names and name not in self.spec.tools and \
                    (name in self.workflow_names or is_file(self.base_dir / name)):
                self.add((*base, "tools", j), f"plan {step.id!r}: `tools:` names "
                         f"sub-workflow {name!r}, not a tool",
                         "list the tools the sub-workflow calls: a plan may then run it")
                continue
            self.check_tool((*base, "tools", j), name)
        if step.joiner_model is not None:
            self.check_model((*base, "joiner_model"), step.joiner_model)
        if self.planner_names is not None and step.planner not in self.planner_names:
            self.add((*base, "planner"), f"unknown planner {step.planner!r}",
                     "installed planners: " + (", ".join(sorted(self.planner_names)) or "none"))
            return
        if self.planner_options is not None:
            for where, message in self.planner_options(step.planner, step.options):
                self.add((*base, "options", *where), message)
        if self.planner_steps is not None:
            known = self.planner_steps(step.planner, step.options)
            self.check_known_steps(base, step, known)
            # as the run counts them: the limit bounds the steps a workflow wrote only
            # when it is set on the plan step (its default is for what an LLM writes)
            if "max_plan_steps" in step.model_fields_set and len(known) > step.max_plan_steps:
                self.add((*base, "max_plan_steps"), f"plan {step.id!r}: {len(known)} steps in "
                         f"`options.steps`, more than its max_plan_steps: {step.max_plan_steps}",
                         f"set max_plan_steps to {len(known)} or more, or leave it unset")

    def check_known_steps(self, base: tuple[str | int, ...], plan: Any, steps: list[Any]
                          ) -> None:
        """The steps a planner is known to add (``options.steps``, a static plan's) name
        tools, sub-workflows and models that exist, and stay inside the plan's ``tools:``
        allowlist, sub-workflows included (when sub-workflows can be loaded here)."""
        rule = (Allowlist(plan.tools, self.base_dir, self.load_workflow)
                if plan.tools and self.load_workflow is not None else None)
        outside = step_dependencies(plan)  # what the plan's steps may read besides their own
        earlier: set[str] = set()
        # the workflow's steps it depends on; a plan's step id hides the workflow's
        readable = {s: self.steps_by_id[s] for s in outside if s in self.steps_by_id}
        for j, inner in enumerate(steps):
            path = (*base, "options", "steps", j)
            unknown = sorted(step_dependencies(inner) - earlier - outside)
            self.known_step_reads(path, inner, readable)
            earlier.add(inner.id)
            readable[inner.id] = inner
            self.known_step_templates(path, inner)
            if unknown:
                self.add(path, f"plan {plan.id!r}: step {inner.id!r} refers to "
                         f"{', '.join(repr(u) for u in unknown)}, which is not an earlier step "
                         "of the plan nor a dependency of the plan step",
                         "refer to an earlier step of `options.steps`, or make the plan step "
                         "depend on it (a reference in its goal, or `after:`)")
            # a bad reference says nothing of the tools the step calls: its allowlist
            # breach is reported with it; an unknown tool, sub-workflow or model is not
            # (the allowlist would name the same thing again)
            before = len(self.problems)
            self.check_names(path, inner)
            self.check_lists(path, inner, typed=False)
            if len(self.problems) > before:
                continue
            found = rule.check(inner.id, inner) if rule is not None else None
            if found is not None:
                self.add(path, f"plan {plan.id!r}: {found.message}",
                         "add the tool to the plan step's `tools:`, or do not call it")

    def known_step_reads(self, path: tuple[str | int, ...], step: Any,
                         readable: dict[str, Any]) -> None:
        """What a step a planner adds (a static plan's) reads of the steps it may read
        (``readable``: the workflow's it depends on, the plan's earlier ones) that they do
        not have: a member other than `output` in a template, a field their
        ``output_schema`` does not declare. Checked for the workflow's own steps, these
        were found only when the plan ran, after the steps before them. A step it may not
        read is reported by :meth:`check_known_steps`."""
        for fname, src in _template_fields(step):
            for ref in templates.template_refs(src):
                if ref.root != "steps" or ref.name not in readable:
                    continue
                at = functools.partial(self.smap.value_spot, (*path, fname), src, ref.line,
                                       ref.name)
                if ref.member is not None and ref.member != "output":
                    self.add((*path, fname), f"`steps.{ref.name}.{ref.member}`: a step's "
                             f"value is `steps.{ref.name}.output`",
                             f"write steps.{ref.name}.output", at)
                    continue
                shown = ".".join(["steps", ref.name, "output", *map(str, ref.path)])
                self.check_schema_path((*path, fname), ref.name, ref.path, shown, at,
                                       step=readable[ref.name])
        for fname, value in _value_fields(step):
            self.known_value_reads((*path, fname), value, readable)

    def known_value_reads(self, path: tuple[str | int, ...], value: Any,
                          readable: dict[str, Any]) -> None:
        """:meth:`known_step_reads` for the ``${...}`` references of a value (nested lists
        and mappings too), each at its own key."""
        if isinstance(value, dict):
            for key, item in value.items():
                self.known_value_reads((*path, key), item, readable)
        elif isinstance(value, list | tuple):
            for j, item in enumerate(value):
                self.known_value_reads((*path, j), item, readable)
        elif isinstance(value, str):
            for ref, raw, line in _located_refs(value):
                if isinstance(ref, Ref) and ref.root == "steps" and ref.name in readable:
                    at = functools.partial(self.smap.value_spot, path, value, line, raw)
                    self.check_schema_path(path, ref.name, ref.path, raw, at,
                                           step=readable[ref.name])

    def known_step_templates(self, path: tuple[str | int, ...], step: Any) -> None:
        """The templates of a step a planner adds (a static plan's), each checked for
        what fails its render whatever the run (a syntax error, `{{ steps }}` or
        `{{ steps.ID }}` printed), at its line: they were found only when the plan ran.
        Their references are checked with the plan's steps (:meth:`check_known_steps`)."""
        for fname, src in _template_fields(step):
            self.template_problems((*path, fname), src)
        if isinstance(step, BranchStep):
            for c, case in enumerate(step.cases):
                self.template_problems((*path, "cases", c, "when"), case.when, expression=True)
        if isinstance(step, MapStep):
            for fname, src in _template_fields(step.step):
                self.template_problems((*path, "step", fname), src)

    def check_tool(self, path: tuple[str | int, ...], name: str) -> None:
        if name not in self.tool_names and name not in self.spec.tools:
            self.add(path, f"unknown tool {name!r}",
                     "built-in tools: " + ", ".join(sorted(self.tool_names)) +
                     "; or name it under `tools:` as module:function")

    def check_output_schema(self, path: tuple[str | int, ...], schema: Any) -> None:
        """An ``output_schema`` that is not a usable JSON Schema fails its step when it
        runs (before any model call): found here first."""
        if schema is not None:
            problem = schema_definition_problem(schema)
            if problem is not None:
                message, where = problem
                self.add((*path, *where), message, "output_schema is a JSON Schema (Draft 2020-12)")

    def check_declared_schema(self, path: tuple[str | int, ...], schema: Any) -> bool:
        """An input's or output's ``schema`` that is not a usable JSON Schema (it made the
        run stop with an internal error, or was never applied). Returns whether it is usable."""
        if schema is None:
            return True
        problem = schema_definition_problem(schema)
        if problem is None:
            return True
        message, where = problem
        self.add((*path, *where), message.replace("output_schema", "schema", 1),
                 "`schema` is a JSON Schema (Draft 2020-12)")
        return False

    def check_input_declaration(self, name: str, decl: InputSpec) -> None:
        """An input's ``schema`` is a JSON Schema, and its ``default`` (null aside: no
        value) has its type and satisfies its schema: a run without the input used a
        default of the wrong type as it was."""
        usable = self.check_declared_schema(("inputs", name, "schema"), decl.json_schema)
        default = decl.default
        if "default" in decl.model_fields_set and decl.required:
            # the default would never be used: a run without the input is refused
            self.add(("inputs", name, "required"),
                     f"input {name!r} is `required: true` and has a `default`, which no run "
                     "would use", "drop `required: true` to use the default when the input "
                     "is not given, or drop the default")
        if "default" not in decl.model_fields_set or default is None:
            return
        if not json_type_ok(default, decl.type):
            self.add(("inputs", name, "default"),
                     f"the default of input {name!r} must be {decl.type}, got {shown_json(default)}",
                     f"give a default of type {decl.type}, or change `type`")
        elif usable and decl.json_schema is not None:
            problem = schema_problem(default, decl.json_schema)
            if problem is not None:
                self.add(("inputs", name, "default"),
                         f"the default of input {name!r} does not satisfy its schema: {problem}",
                         "give a default that its `schema` accepts")

    def check_not_jinja(self, path: tuple[str | int, ...], value: Any, local: set[str],
                        what: str = "tool arguments and sub-workflow inputs") -> None:
        """Tool ``args``, sub-workflow ``inputs`` and a workflow's ``outputs`` take
        ``${...}`` references and are not rendered: a ``{{ ... }}`` there reading inputs,
        steps or the map's item would reach the tool (or the run's output) as that text
        (only prompts are Jinja2 templates).

        :param what: the values checked, as the problem names them."""
        if isinstance(value, dict):
            for k, v in value.items():
                self.check_not_jinja((*path, k), v, local, what)
        elif isinstance(value, list):
            for j, v in enumerate(value):
                self.check_not_jinja((*path, j), v, local, what)
        elif isinstance(value, str) and ("{{" in value or "{%" in value):
            names = templates.names_read(REF_RE.sub("", value))
            if names & ({"inputs", "steps"} | local):
                self.add(path, f"{shown(value)} is passed as this text: {what} are not "
                         "Jinja2 templates",
                         "refer to a value with ${...}: " + ", ".join(
                             ["${inputs.NAME}", "${steps.ID.output}",
                              *(f"${{{v}}}" for v in sorted(local))]))

    def check_tool_args(self, base: tuple[str | int, ...], name: str, args: dict[str, Any]
                        ) -> None:
        """A known tool's arguments: no name it lacks, every one it requires, and literal
        values (those holding no reference or template) of the types it declares."""
        if self.tool_arguments is None:
            return
        model = self.tool_arguments(name)
        if model is None:
            return
        fields = model.model_fields
        accepted = ", ".join(fields) or "none"
        for arg in args:
            if arg not in fields:
                self.add((*base, "args", arg), f"tool {name!r} has no argument {arg!r}",
                         f"its arguments: {accepted}")
        for arg, info in fields.items():
            if info.is_required() and arg not in args:
                self.add((*base, "args"), f"tool {name!r} needs argument {arg!r}",
                         f"its arguments: {accepted}")
        literal = {k: v for k, v in args.items() if k in fields and next(iter_refs(v), None) is None}
        try:
            model.model_validate(literal)
            return
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        for e in errors:
            arg = str(e["loc"][0]) if e["loc"] else ""
            if arg in literal and e["type"] not in ("missing", "extra_forbidden"):
                where = ".".join(str(p) for p in e["loc"])
                self.add((*base, "args", arg), f"tool {name!r} argument {where}: {e['msg']} "
                         f"(got {shown_json(literal[arg])})",
                         "give a value of the type the tool declares")

    def check_model(self, path: tuple[str | int, ...], model: str) -> None:
        """A step's model alias is declared under ``models:``, given by the run
        (``--model NAME=FILE``), or ``default``: without ``models:`` an undeclared alias
        ran on the bundled model, silently."""
        if model == "default" or model in self.spec.models or model in self.models_given:
            return
        if self.spec.models:
            hint = "models declared: " + ", ".join(sorted(self.spec.models))
        else:
            hint = (f"declare it under `models:`, or give it with --model {model}=FILE "
                    "(without `models:` only `default`, the bundled model, is known, and "
                    "as a sub-workflow the models of the workflow running it)")
        self.add(path, f"unknown model {model!r}", hint)

    def check_workflow(self, path: tuple[str | int, ...], ref: str) -> None:
        if ref in self.workflow_names:
            return
        if not is_file(self.base_dir / ref):
            where = f"{self.base_dir.name or '.'}/"
            self.add(path, "`workflow:` is empty: it names no sub-workflow" if not ref.strip()
                     else f"sub-workflow {ref!r} is a directory (in {where}), not a workflow "
                     "file" if _is_dir(self.base_dir / ref) else
                     f"sub-workflow {ref!r} not found (looked in {where})",
                     "give a path relative to this file, or register the workflow in Python")

    def check_targets(self, path: tuple[str | int, ...], step: BranchStep, ids: list[str]) -> None:
        for j, target in enumerate(ids):
            if target not in self.index:
                self.add((*path, j), f"branch {step.id!r} names unknown step {target!r}",
                         "list ids of steps defined in this workflow")
            elif target == step.id:
                self.add((*path, j), f"branch {step.id!r} cannot target itself")


def _is_dir(path: Path) -> bool:
    """Whether ``path`` names a directory; False for a path none can have (a NUL in it)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _static_children(fanout: Any) -> int | None:
    """How many children a fan-out starts, when the workflow says so (None when it
    depends on the run: messages or items from another step, or from a model)."""
    if fanout.kind == "sample":
        return int(fanout.n)
    if fanout.kind == "spawn":
        messages = fanout.messages
        return min(len(messages), fanout.max_children) if isinstance(messages, list) else None
    if fanout.kind == "map":
        return len(fanout.over) if isinstance(fanout.over, list) else None
    return None


def compile_workflow(
    spec: WorkflowSpec,
    source: SourceMap | None = None,
    *,
    tool_names: set[str] | None = None,
    base_dir: Path | None = None,
    workflow_names: set[str] | None = None,
    planner_names: set[str] | None = None,
    planner_options: PlannerOptionCheck | None = None,
    planner_steps: PlannerSteps | None = None,
    load_workflow: SubworkflowLoader | None = None,
    tool_arguments: ToolArguments | None = None,
    models_given: frozenset[str] = frozenset(),
) -> CompiledGraph:
    """Validate a spec and build its DAG.

    :param tool_names: tools available besides the workflow's own `tools:`.
    :param planner_options: what a planner finds wrong with a plan step's ``options:``
        (``Registry.planner_option_problems``).
    :param planner_steps: the steps a planner is known to add
        (``Registry.planner_known_steps``), checked as the workflow's own are.
    :param load_workflow: how a sub-workflow is read, to hold the sub-workflows of those
        steps to their plan's ``tools:`` (not checked without it).
    :param tool_arguments: the argument model of a known tool, to check tool steps'
        ``args`` (names, required ones, literal values; not checked without it).
    :param models_given: model aliases the run serves besides the workflow's ``models:``
        (``ponder run --model NAME=FILE``); a step may name them.
    :raises ValidationFailed: with every problem found.
    """
    smap = source or SourceMap()
    base = base_dir or Path(".")
    chk = _Checker(spec, smap, tool_names or set(), base, workflow_names or set(), planner_names,
                   planner_options, planner_steps, load_workflow, tool_arguments,
                   models_given)
    nodes: dict[str, Node] = {}
    dag: nx.DiGraph = nx.DiGraph()
    branch_targets: dict[str, set[str]] = {}

    misspelt = [k[0] for k in smap.positions if len(k) == 1 and k[0] != "steps"
                and difflib.get_close_matches(str(k[0]), ["steps"], n=1, cutoff=0.7)]
    if not spec.steps and not misspelt:  # else `step:` is an unknown field meaning steps
        chk.add(("steps",), "the workflow has no steps",
                "add a `steps:` list; each step starts with `- id: NAME`, then its `kind:`")
    for i, step in enumerate(spec.steps):
        if step.id in nodes:
            chk.add(("steps", i, "id"), f"duplicate step id {step.id!r}",
                    "give each step a unique id")
            continue
        line, _ = smap.locate(("steps", i))
        nodes[step.id] = Node(step.id, step.kind, step, frozenset(), pool_for(step.kind, step),
                              estimate_cost(step), line)
    deps_of: dict[str, set[str]] = {}
    for i, step in enumerate(spec.steps):
        if step.id in deps_of:
            # a duplicate id (reported above): not in the graph, but its references, names
            # and `after:` are still checked, in this pass
            chk.position = i
            chk.step_deps(i, step)
            chk.position = None
            continue
        deps_of[step.id] = chk.step_deps(i, step)
        of = getattr(step, "of", None) if step.kind == "join" else None
        if of in deps_of and nodes[of].kind == "map" and getattr(step, "reducer", None) in \
                ONLINE_REDUCERS:
            # it watches the map's items finish (and cancels the rest): it starts with the
            # map, not after it
            deps_of[step.id] = (deps_of[step.id] - {of}) | deps_of[of]
        if isinstance(step, BranchStep):
            targets = {t for c in step.cases for t in c.then} | set(step.default)
            branch_targets[step.id] = {t for t in targets if t in nodes and t != step.id}
    for bid, targets in branch_targets.items():
        for t in targets:
            deps_of[t].add(bid)
    for nid, node in nodes.items():
        node.deps = frozenset(deps_of.get(nid, set()))
        dag.add_node(nid)
        for d in node.deps:
            dag.add_edge(d, nid)

    for name, out in spec.outputs.items():
        # an output written as a mapping has its value under `from:`; the short form
        # (`x: ${steps.a.output}`) at the output's own key
        long_form = ("outputs", name, "from")
        value_at = long_form if long_form in smap.positions else ("outputs", name)
        chk.refs_in_value(value_at, None, out.value, set())
        chk.check_not_jinja(value_at, out.value, set(), "outputs")
        chk.check_declared_schema(("outputs", name, "schema"), out.json_schema)
    for name, decl in spec.inputs.items():
        chk.check_input_declaration(name, decl)
    if not nx.is_directed_acyclic_graph(dag):
        for cycle in nx.simple_cycles(dag):
            first = min(cycle, key=lambda s: chk.index.get(s, 0))
            k = cycle.index(first)
            cycle = cycle[k:] + cycle[:k]  # start at the step defined first: stable output
            chk.add(("steps", chk.index.get(first, 0)),
                    "cycle: " + " -> ".join([*cycle, cycle[0]]),
                    "break the loop: one of these steps must not depend on the others")
            break
    if chk.problems:
        raise ValidationFailed(sorted(chk.problems, key=lambda p: (p.line, p.column)))
    return CompiledGraph(spec, smap, base, nodes, dag, branch_targets)
