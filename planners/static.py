"""The static planner: a YAML graph is itself a plan.

::

    - id: facts
      kind: plan
      planner: static
      goal: "{{ inputs.city }}"
      options:
        output: total            # the step whose output is the plan's (default: last)
        steps:
          - {id: a, kind: tool, tool: calc, args: {expression: "2 + 3"}}
          - {id: total, kind: tool, tool: calc, args: {expression: "${steps.a.output} * 10"}}

The steps go through the same machinery as an LLM's plan (live-graph patches under
the plan step, the same events). Their ids are namespaced under the plan step
(``facts__a``) and references between them are rewritten to match; they may also
refer to ``inputs`` and to the steps the plan step itself depends on.
"""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from orchestrator.graph.compile import step_dependencies
from orchestrator.spec import templates
from orchestrator.spec.base import BOOL_NOT_NUMBER, STRING_NOT_NUMBER
from orchestrator.spec.models import BranchStep, Step
from orchestrator.spec.options import options_message
from planners.base import (
    OptionProblem,
    PlanAnswer,
    PlannedStep,
    PlanRequest,
    PlanSession,
    option_problems,
)
from planners.errors import PlanFailed, PlannerConfigError
from planners.plan import PlanProblem

_STEP_ADAPTER: TypeAdapter[Any] = TypeAdapter(Step)
_ID_LIST_FIELDS = ("after", "then", "default")


class StaticOptions(BaseModel):
    """The ``options:`` of a ``static`` plan step."""

    model_config = ConfigDict(extra="forbid")

    steps: list[dict[str, Any]] = Field(min_length=1, description="Steps, as in `steps:`.")
    output: str | None = Field(None, description="Id of the step whose output is the "
                                                 "plan's output (default: the last one).")


class StaticPlanner:
    """Adds the steps of ``options.steps``; the output is that of ``options.output``."""

    uses_joiner: ClassVar[bool] = False
    uses_tools: ClassVar[bool] = False

    @classmethod
    def option_problems(cls, options: dict[str, Any]) -> list[OptionProblem]:
        """Every problem of a plan step's ``options:``: the options, each step as a
        step, ids used twice, an ``output`` that is not one of the steps. Each is found
        whatever else is wrong; none follows from another (an ``output`` naming a step
        that is invalid for another reason is that step's)."""
        return _checked_steps(options)[1]

    @classmethod
    def models_used(cls, step: Any) -> set[str]:
        """None: the plan is written in the workflow, and no joiner reads it (the steps
        it adds name their own models)."""
        return set()

    @classmethod
    def known_steps(cls, options: dict[str, Any]) -> list[Any]:
        """The steps of ``options.steps`` as step models, with their ids as written, so
        that compiling checks their tools, models and references even when other options
        have problems (which :meth:`option_problems` reports). A step that is not valid
        (reported there) stands as an empty step of its id, so that a later step reading
        it is not said to read an unknown step."""
        raw = options.get("steps")
        if not isinstance(raw, list):
            return []
        out: list[Any] = []
        for data, step in zip(raw, _checked_steps(options)[0], strict=True):
            if step is not None:
                out.append(step)
            elif isinstance(sid := _raw_id(data), str):
                out.append(BranchStep.model_construct(id=sid, cases=[]))
        return out

    @classmethod
    def recorded_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """A plan step's ``options:`` as a run recorded them (as written), read as that run
        read them: a quoted number in one of its steps (``timeout_s: "30"``) or a boolean
        where a number belongs (``max_tokens: true``), which Ponder read as the number
        before it refused them, is that number, in a static plan among its steps too.
        Resume and replay read a recorded workflow so; its compile refuses neither any
        more, and a workflow written since cannot hold one (its compile refused it)."""
        raw = options.get("steps")
        if not isinstance(raw, list):
            return options
        return {**options, "steps": [_numbers_as_read(data) for data in raw]}

    async def plan(self, request: PlanRequest, session: PlanSession
                   ) -> AsyncGenerator[PlannedStep | PlanProblem | PlanAnswer, None]:
        """Yield every step, wait for them, yield the chosen step's output.

        :raises PlannerConfigError: before any step is added, with every problem of the
            options (invalid steps, ids used twice, a bad ``output``, as ``ponder
            validate`` words each) and every reference to no earlier step: a run that was
            not validated (an SDK run) is told all of them at once.
        :raises PlanFailed: when the output step does not succeed.
        """
        options = request.step.options
        steps, problems = _checked_steps(options)  # each step is validated here only
        raw = options.get("steps")
        raw = raw if isinstance(raw, list) else []
        ids = {sid: request.step_id(sid) for sid in map(_raw_id, raw) if isinstance(sid, str)}
        planned, problems_of_refs = _renamed_steps(raw, steps, ids,
                                                   step_dependencies(request.step))
        problems += _too_many(request.step, len(raw))
        if problems or problems_of_refs:
            raise PlannerConfigError(options_message([*problems, *problems_of_refs]))
        local = [step.id for step, _ in planned]
        output = options.get("output") or local[-1]  # valid options: a str or None
        for step, renamed in planned:
            yield PlannedStep(renamed, step.id, f"{step.kind} step {step.id}")
        results = await session.wait([ids[s] for s in local])
        final = results[ids[output]]
        if not final.ok:
            raise PlanFailed(f"static plan: step {output!r} {final.status}: {final.error}",
                             step_id=session.step_id)
        yield PlanAnswer(final.output)


#: lax readings of a quoted number, as Ponder took one before it refused it
_LAX: dict[str, TypeAdapter[Any]] = {"an integer": TypeAdapter(int), "a number": TypeAdapter(float)}


def _numbers_as_read(data: Any) -> Any:
    """One step of a recorded static plan with each quoted number and each boolean that
    its validation refuses where a number belongs replaced by the number an earlier Ponder
    read (``"3"`` is 3, ``true`` is 1); anything else as it is (see
    :meth:`StaticPlanner.recorded_options`)."""
    if not isinstance(data, dict):
        return data
    out = copy.deepcopy(data)
    options = out.get("options")
    if out.get("kind") == "plan" and out.get("planner") == "static" and isinstance(options,
                                                                                   dict):
        out["options"] = StaticPlanner.recorded_options(options)
    try:
        _STEP_ADAPTER.validate_python(out)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            value = err.get("input")
            if err["type"] == BOOL_NOT_NUMBER and isinstance(value, bool):
                _set_at(out, tuple(err["loc"]), value, int(value))
            elif err["type"] == STRING_NOT_NUMBER and isinstance(value, str):
                lax = _LAX.get((err.get("ctx") or {}).get("expected", ""), _LAX["a number"])
                _set_at(out, tuple(err["loc"]), value, lax.validate_python(value))
    return out


def _set_at(at: Any, loc: tuple[Any, ...], was: Any, value: Any) -> bool:
    """Put ``value`` in place of ``was`` at a validation error's path ``loc`` in ``at``;
    a part of the path may name no key (a tagged union's tag: ``llm``, also where the
    step has a field of that name, as a ``tool`` step has ``tool``). Whether it did."""
    if not loc:
        return False
    part, rest = loc[0], loc[1:]
    has = (part in at if isinstance(at, dict) else
           isinstance(at, list) and isinstance(part, int) and 0 <= part < len(at))
    if not rest:
        if has and type(at[part]) is type(was) and at[part] == was:
            at[part] = value
            return True
        return False
    return (has and _set_at(at[part], rest, was, value)) or _set_at(at, rest, was, value)


def _too_many(step: Any, count: int) -> list[OptionProblem]:
    """A plan of more steps than ``max_plan_steps`` *set on the plan step*: its default
    (32) bounds what an LLM writes, not a plan the workflow's author wrote."""
    if "max_plan_steps" not in step.model_fields_set or count <= step.max_plan_steps:
        return []
    return [(("steps",), f"static plan: {count} steps, more than max_plan_steps: "
                         f"{step.max_plan_steps} set on the plan step")]


def rename_step(step: Any, ids: dict[str, str], patterns: re.Pattern[str] | None = None
                ) -> Any:
    """A copy of ``step`` with its id and every reference to ``ids`` renamed.

    :param patterns: ``_patterns(ids)``, when the caller renames many steps.
    """
    data = step.model_dump(by_alias=True, exclude_unset=True)
    data = _rename(data, ids, _patterns(ids) if patterns is None else patterns)
    data["id"] = ids.get(step.id, step.id)
    return _STEP_ADAPTER.validate_python(data)


def _raw_ids(raw: list[Any]) -> list[str] | None:
    """The ids of ``raw`` steps as written, each once; None when a step has none (an
    ``output`` may then name it, which is that step's problem)."""
    ids: list[str] = []
    for data in raw:
        sid = data.get("id") if isinstance(data, dict) else None
        if not isinstance(sid, str):
            return None
        if sid not in ids:
            ids.append(sid)
    return ids


def _raw_id(data: Any) -> Any:
    """The ``id`` of a step as written (anything, or None)."""
    return data.get("id") if isinstance(data, dict) else None


def _checked_steps(options: dict[str, Any]
                   ) -> tuple[list[Any | None], list[OptionProblem]]:
    """Each of ``options.steps`` as a step model (None for one that is not valid), and
    every problem of the options (see :meth:`StaticPlanner.option_problems`), from one
    validation of each step."""
    problems = option_problems(StaticOptions, options, "static plan")
    raw = options.get("steps")
    if not isinstance(raw, list):
        return [], problems  # reported above: there are no steps to look into
    steps: list[Any | None] = []
    seen: set[str] = set()
    for i, data in enumerate(raw):
        if not isinstance(data, dict):
            steps.append(None)
            continue  # reported above, as options.steps[i]
        sid = data.get("id")
        if isinstance(sid, str):
            if sid in seen:
                problems.append((("steps", i, "id"), f"static plan: step id {sid!r} is "
                                                     "used twice"))
            seen.add(sid)
        try:
            steps.append(_STEP_ADAPTER.validate_python(data))
        except ValidationError as exc:
            steps.append(None)
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                if loc and loc[0] == data.get("kind"):
                    loc = loc[1:]  # the union's tag: the path is inside the step
                where = ".".join(str(p) for p in loc) or "(step)"
                problems.append((("steps", i, *loc),
                                 f"static plan: options.steps[{i}]: {where}: {err['msg']}"))
    output = options.get("output")
    ids = _raw_ids(raw)
    if isinstance(output, str) and ids and output not in ids:
        problems.append((("output",), f"static plan: `output: {output}` is not one of "
                                      f"its steps ({', '.join(ids)})"))
    return steps, problems


def _renamed_steps(raw: list[Any], steps: list[Any | None], ids: dict[str, str],
                   outside: set[str]) -> tuple[list[tuple[Any, Any]], list[OptionProblem]]:
    """The valid steps of ``raw`` (``steps``: each as a model, None when not valid), each
    with its renamed copy, and a problem for each that
    refers to a step neither earlier in the plan nor in ``outside`` (what the plan step
    depends on). A step that is not valid still counts as earlier: reading it is not a
    second problem."""
    planned: list[tuple[Any, Any]] = []
    problems: list[OptionProblem] = []
    back = {v: k for k, v in ids.items()}
    patterns = _patterns(ids)  # once: 2 per id were built for every step
    added: set[str] = set()
    for i, (data, step) in enumerate(zip(raw, steps, strict=True)):
        if step is None:
            if isinstance(sid := _raw_id(data), str):
                added.add(ids[sid])
            continue
        renamed = rename_step(step, ids, patterns)
        unknown = sorted(step_dependencies(renamed) - added - outside)
        if unknown:
            shown = ", ".join(repr(back.get(u, u)) for u in unknown)
            problems.append((("steps", i), f"static plan: step {step.id!r} refers to {shown}, "
                             "which is not an earlier step of the plan nor a dependency of "
                             "the plan step"))
        planned.append((step, renamed))
        added.add(renamed.id)
    return planned, problems


def _patterns(ids: dict[str, str]) -> re.Pattern[str]:
    """The references to any of ``ids`` a template may hold, ``steps.ID`` and
    ``steps['ID']``, as one pattern: renaming is one pass, which never reads what it
    wrote itself."""
    if not ids:
        return re.compile(r"(?!)")  # matches nothing
    names = "|".join(re.escape(old) for old in sorted(ids, key=len, reverse=True))
    return re.compile(rf"(?<![\w\-.])steps(?:\.(?P<dotted>{names})(?![\w\-])"
                      rf"|\[\s*(?P<q>['\"])(?P<indexed>{names})(?P=q)\s*\])")


def _rename(value: Any, ids: dict[str, str], patterns: re.Pattern[str],
            key: str | None = None) -> Any:
    if isinstance(value, str):
        if key == "of":
            return ids.get(value, value)
        found = list(patterns.finditer(value))
        if not found:
            return value
        # a `steps` the template binds itself there (`{% for steps in xs %}`) is its own
        keep = templates.rebound_at(value, [(m.start(), m.start() + len("steps"))
                                            for m in found])
        parts: list[str] = []
        end = 0
        for k, m in enumerate(found):
            if k in keep:
                continue
            parts += [value[end:m.start()],
                      f"steps['{ids[m.group('dotted') or m.group('indexed')]}']"]
            end = m.end()
        return "".join([*parts, value[end:]])
    if isinstance(value, list):
        if key in _ID_LIST_FIELDS:
            return [ids.get(v, v) if isinstance(v, str) else v for v in value]
        return [_rename(v, ids, patterns) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, ids, patterns, k) for k, v in value.items()}
    return value
