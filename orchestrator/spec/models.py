"""The workflow spec: one pydantic model reached from YAML and from the Python SDK.

Steps are a tagged union on ``kind``. Every model forbids unknown fields so that a
typo in a workflow file is an error with its line, not a silently ignored key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from orchestrator.errors import SHOWN_CHARS, shown
from orchestrator.spec.base import (
    FIELD_NOT_USED,
    NOT_BOOL,
    TOP_P_DOC,
    Integer,
    Number,
    OptionalInteger,
    OptionalNumber,
    RetryPolicy,
    StepBase,
    _Model,
)

JSONType = Literal["string", "integer", "number", "boolean", "array", "object", "any"]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def shown_json(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A value read from YAML or JSON as a message echoes it, in JSON's words: ``null``,
    ``true``, ``[1, 2]``, ``{"a": null}``; a string as :func:`~orchestrator.errors.shown`
    quotes it (``'abc'``), as every message does, and a value JSON has no text for (an
    SDK's Python object) as its ``repr``. Longer than ``limit`` characters: its start and
    its length, as ``shown`` cuts it."""
    if isinstance(value, str):
        return shown(value, limit)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return shown(value, limit)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def json_kind(value: Any) -> str:
    """A value's JSON type as a message names it: ``an object``, ``a string``, ``null``
    (the Python type's name for a value JSON has no type for)."""
    if value is None:
        return "null"
    for name in ("string", "boolean", "integer", "number", "object", "array"):
        if json_type_ok(value, name):
            return "an " + name if name[0] in "aeiou" else "a " + name
    return type(value).__name__


def json_type_ok(value: Any, type_name: str) -> bool:
    """Whether ``value`` has the JSON type ``type_name`` (``any``: every value; a boolean
    is not a number)."""
    if type_name == "any":
        return True
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _JSON_TYPES[type_name])


class LLMStep(StepBase):
    """Call a language model with a Jinja2 prompt template."""

    kind: Literal["llm"] = "llm"
    prompt: str = Field(description="Jinja2 template; `${...}` references also work.")
    system: str | None = Field(None, description="Optional system message (a template too).")
    model: str = Field("default", description="A key of the workflow's `models:` section.")
    max_tokens: Integer = Field(256, ge=1, le=1_000_000, description="Most tokens to generate.")
    temperature: Number = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    top_p: OptionalNumber = Field(None, gt=0, le=1, description=TOP_P_DOC)
    stop: list[str] | None = Field(None, description="Stop sequences.")
    output_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema the output must satisfy (constrained where supported)."
    )
    schema_repairs: Integer = Field(
        2, ge=0, le=10, description="Re-asks with the validation error fed back."
    )
    seed: OptionalInteger = Field(None, description="Sampling seed, where the backend takes one.")
    budget_tokens: OptionalInteger = Field(
        None, ge=1, description="Token budget of this step, schema repairs included.")


class ToolStep(StepBase):
    """Call a registered Python callable with validated arguments."""

    kind: Literal["tool"] = "tool"
    tool: str = Field(description="A built-in tool or one named under `tools:`.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments; may hold refs.")


class WorkflowStep(StepBase):
    """Run another workflow as one step; its outputs become this step's output."""

    kind: Literal["workflow"] = "workflow"
    workflow: str = Field(description="Path (relative to this file) or a registered name.")
    inputs: dict[str, Any] = Field(default_factory=dict)


class BranchCase(_Model):
    when: str = Field(description="Jinja2 expression, e.g. `steps.kind.output == 'math'`.")
    then: list[str] = Field(description="Steps that run when this case is the first true one.")


def tool_name_problem(name: str) -> str | None:
    """Why a tool cannot be served under ``name``, or ``None``.

    A planner's text plan calls a tool as ``name(...)`` and an LLM API's function names are
    one word, so a name with a space can be called only by a ``tool:`` step that quotes it
    (unquoted YAML drops the spaces at its edges); a control character (a NUL: no store
    records it) breaks the run's record and messages.
    """
    if not name or not name.isprintable() or any(ch.isspace() for ch in name):
        return ("a tool's name must be one word, without spaces or control characters "
                f"(such as 'word_count'), not {shown(name)}")
    return None


def _tool_name(name: str) -> str:
    problem = tool_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


ToolName = Annotated[str, AfterValidator(_tool_name)]


def _unused(schema: dict[str, Any]) -> None:
    """The published schema of a field its step kind refuses (FIELD_NOT_USED): null only."""
    description = schema.get("description")
    schema.clear()
    schema.update({"type": "null", "description": description})


class BranchStep(StepBase):
    """Pick a path: the steps of the first true case run, those of the others are skipped."""

    kind: Literal["branch"] = "branch"
    cases: list[BranchCase] = Field(min_length=1)
    default: list[str] = Field(default_factory=list, description="Steps when no case is true.")
    timeout_s: OptionalNumber = Field(None, json_schema_extra=_unused,
                                      description="Not for a branch: it has no attempts.")
    retry: RetryPolicy | None = Field(None, json_schema_extra=_unused,
                                      description="Not for a branch: it has no attempts.")

    @field_validator("timeout_s", "retry")
    @classmethod
    def _no_attempts(cls, value: Any) -> Any:
        """A branch evaluates its conditions once, in the scheduler: it has no attempt to
        time or to retry, so these fields would be ignored without a word."""
        if value is not None:
            raise PydanticCustomError(FIELD_NOT_USED, "a branch step has no attempts to time "
                                      "out or retry: put `timeout_s` / `retry` on the "
                                      "steps it runs")
        return value


class MapBody(_Model):
    """The step a `map` runs for each item: an llm, tool or workflow step without an id."""

    kind: Literal["llm", "tool", "workflow"] = Field(
        description="What runs per item; the other fields are those of that step kind, "
        "and `{{ item }}` / `${item}` and `index` refer to the current item.")
    prompt: str | None = None
    system: str | None = None
    model: str = "default"
    max_tokens: Integer = Field(256, ge=1, le=1_000_000)
    temperature: Number = Field(0.0, ge=0, le=2)
    top_p: OptionalNumber = Field(None, gt=0, le=1, description=TOP_P_DOC)
    stop: list[str] | None = None
    output_schema: dict[str, Any] | None = None
    schema_repairs: Integer = Field(2, ge=0, le=10)
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    workflow: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    timeout_s: OptionalNumber = Field(None, gt=0)
    retry: RetryPolicy | None = Field(
        None, description="Overrides the map's `retry` field by field, as that one does "
        "`defaults.retry`.")

    @model_validator(mode="after")
    def _fields_match_kind(self) -> MapBody:
        needed = {"llm": "prompt", "tool": "tool", "workflow": "workflow"}[self.kind]
        if getattr(self, needed) is None:
            raise ValueError(f"a map body of kind {self.kind!r} needs `{needed}`")
        return self

    def to_step(self, step_id: str) -> LLMStep | ToolStep | WorkflowStep:
        """Make the concrete step for one item."""
        data = self.model_dump(exclude_unset=True)
        data["id"] = "item"  # generated ids such as `m[3]` are not valid user ids
        data["kind"] = self.kind
        allowed = _BODY_FIELDS[self.kind]
        step = _BODY_TYPES[self.kind].model_validate(
            {k: v for k, v in data.items() if k in allowed})
        return step.model_copy(update={"id": step_id})


class MapStep(StepBase):
    """Run a body step once for each item of a list, at most `concurrency` at a time."""

    kind: Literal["map"] = "map"
    over: Any = Field(description="A list, or a reference to one, e.g. `${steps.split.output}`.")
    item_var: str = Field("item", alias="as", description="Name of the item in the body.")
    step: MapBody
    concurrency: OptionalInteger = Field(None, ge=1, description="Children running at once.")

    @field_validator("item_var")
    @classmethod
    def _item_name(cls, value: str) -> str:
        """A name the body can read: ``${NAME}`` and ``{{ NAME }}`` take an identifier,
        and ``inputs`` or ``steps`` would hide the run's own (the body's references to
        them would read the item instead)."""
        if not value.isidentifier() or not value.isascii():
            raise ValueError(f"`as:` must be a name a template can read (ASCII letters, "
                             f"digits and _, not starting with a digit), not {shown(value)}")
        if value in _NAMESPACES:
            raise ValueError(f"`as:` {shown(value)} would hide the run's own `{value}` from the "
                             f"body: give the item another name (e.g. `as: item`)")
        return value


#: the names every step's templates read the run's values by
_NAMESPACES = frozenset({"inputs", "steps"})


from orchestrator.spec.kinds_fanout import JoinStep, SampleStep, SpawnStep  # noqa: E402
from orchestrator.spec.kinds_plan import PlanStep  # noqa: E402

Step = Annotated[
    LLMStep | ToolStep | MapStep | BranchStep | WorkflowStep | PlanStep | SpawnStep | SampleStep
    | JoinStep,
    Field(discriminator="kind"),
]
STEP_KINDS = ("llm", "tool", "map", "branch", "workflow", "plan", "spawn", "sample", "join")

_BODY_TYPES: dict[str, type[LLMStep] | type[ToolStep] | type[WorkflowStep]] = {
    "llm": LLMStep,
    "tool": ToolStep,
    "workflow": WorkflowStep,
}
_BODY_FIELDS = {k: set(t.model_fields) for k, t in _BODY_TYPES.items()}


def _not_json(name: str) -> Any:
    """``NaN``, ``Infinity``: Python's json reads them, JSON has no such numbers."""
    raise ValueError(f"{name} is not a JSON number")


def non_finite_at(value: Any, *, key: Callable[[Any], Any] = lambda k: k,
                  models: bool = False) -> tuple[tuple[Any, ...], str] | None:
    """Where a value holds a number JSON has none for (NaN, Infinity), at any depth: its
    path (list indices, object keys as ``key`` makes them) and which number
    (``"-Infinity"``); or None. ``models``: look into pydantic models too, through the
    fields written in them (by alias), as a step's are.

    Python's json reads ``NaN`` and ``Infinity`` and a float can be either; no store, model
    or JSON output can hold them.
    """
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    seen: set[int] = set()  # each container once: one that holds itself (SDK data) ends
    while stack:
        path, cur = stack.pop()
        if isinstance(cur, float) and not math.isfinite(cur):
            return path, "NaN" if math.isnan(cur) else "Infinity" if cur > 0 else "-Infinity"
        model = models and isinstance(cur, BaseModel)
        if model or isinstance(cur, dict | list | tuple):
            if id(cur) in seen:
                continue
            seen.add(id(cur))
        if model:
            fields = type(cur).model_fields
            stack.extend(((*path, fields[f].alias or f), getattr(cur, f))
                         for f in reversed(list(fields)) if f in cur.model_fields_set)
        elif isinstance(cur, dict):
            stack.extend(((*path, key(k)), v) for k, v in reversed(cur.items()))
        elif isinstance(cur, list | tuple):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(cur))))
    return None


def json_path(path: Sequence[Any]) -> str:
    """A path into a value as ``.a.b[1]["x y"]``: a name as ``.name``, an index or any
    other key as its JSON in brackets."""
    return "".join(f".{p}" if isinstance(p, str) and p.isidentifier()
                   else f"[{json.dumps(p, ensure_ascii=False)}]" for p in path)


def non_finite(value: Any, name: str) -> str | None:
    """Where a value holds a number JSON has none for (NaN, Infinity), at any depth:
    ``"x.y is NaN"``, ``"x[1] is Infinity"`` (``name`` is the value's own path), or None
    (see :func:`non_finite_at`)."""
    found = non_finite_at(value)
    return None if found is None else f"{name}{json_path(found[0])} is {found[1]}"


#: The most arrays and objects a value written in a workflow (an input's ``default``) may
#: nest. pydantic's JSON serializer, which writes the workflow (to compile it) and every
#: event a store keeps, refuses a value deeper than 255 levels from the object holding
#: it, and a run's inputs sit three levels down in its ``run_started`` event (so do the
#: defaults in the workflow); the rest is room for a step that passes the value on
#: inside one of its own (a tool's ``args: {x: ${inputs.x}}``).
MAX_VALUE_DEPTH = 250


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` arrays and objects (dicts, lists,
    tuples) inside each other; a value that holds itself does. Level by level, each
    container once a level, so that a value sharing its parts (SDK data, YAML aliases)
    takes no longer than its distinct containers times ``limit``."""
    level = [value] if isinstance(value, dict | list | tuple) else []
    for _ in range(limit):
        if not level:
            return False
        below: dict[int, Any] = {}
        for container in level:
            for item in container.values() if isinstance(container, dict) else container:
                if isinstance(item, dict | list | tuple):
                    below[id(item)] = item
        level = list(below.values())
    return bool(level)


class InputText(str):
    """Text given on the command line for an input (``--input name=TEXT``): for an input of
    type any, text that reads as JSON is that JSON value, other text the text itself
    (a string given any other way, ``--inputs-json`` or the SDK, is taken as it is)."""

    __slots__ = ()


def _read_json(name: str, text: str) -> Any:
    """``text`` read as JSON, or ``text`` itself when it is not JSON (nor is NaN or
    Infinity; an array or object holding one is read, for its check to say where).

    :raises ValueError: naming input ``name``, when the text nests too deeply.
    """
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError:  # not JSON (NaN and Infinity neither): the text itself
        try:
            lenient = json.loads(text)
        except (ValueError, RecursionError):
            lenient = None
        return lenient if isinstance(lenient, dict | list) else text
    except RecursionError:
        raise ValueError(f"input {name!r} nests too deeply") from None


class InputSpec(_Model):
    type: JSONType = Field("string", description="JSON type of the value.")
    description: str = ""
    default: Any = Field(None, description="Used when the input is not given; of `type` and "
                         "satisfying `schema` (null aside).")
    required: bool | None = Field(None, description="Defaults to true when no default is set.")
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="A full JSON Schema, for structured inputs."
    )

    @field_validator("default")
    @classmethod
    def _storable_default(cls, value: Any) -> Any:
        """A default a run can record: one nested deeper than :data:`MAX_VALUE_DEPTH`
        passed validation, and the run then stopped with an internal error; one that holds
        NaN or Infinity (`default: .nan`) ran, where the same value given is refused."""
        if nested_deeper_than(value, MAX_VALUE_DEPTH):
            raise ValueError(f"the default nests arrays and objects more than "
                             f"{MAX_VALUE_DEPTH} levels deep: a run stores no deeper value")
        where = non_finite(value, "default")
        if where is not None:
            raise ValueError(f"{where}, which JSON has no number for")
        return value

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else "default" not in self.model_fields_set

    def accept(self, name: str, value: Any) -> Any:
        """The value input ``name`` takes for ``value``. A string given for an input of
        another type than string and any is read as JSON when it can be; so is the
        :class:`InputText` of ``--input name=TEXT`` for an input of type any (other text is
        the text itself). ``None`` (null) is taken for an optional input whose default is
        null (or that has none), as the default itself; it is refused, as of the wrong
        type, for a required input and for one with another default.

        :raises ValueError: naming the input, when the value is not of its type or does
            not satisfy its ``schema``.
        """
        typed = self.type not in ("string", "any")
        if isinstance(value, InputText):
            value, typed = str(value), typed or self.type == "any"
        if typed and isinstance(value, str):
            value = _read_json(name, value)
        if value is None and self.default is None and not self.is_required:
            return None  # the default itself, as a resumed run's recorded inputs give it
        if not isinstance(value, str):
            where = non_finite(value, name)
            if where is not None:
                raise ValueError(f"input {name!r}: {where}, which JSON has no number for")
        if not json_type_ok(value, self.type):
            raise ValueError(f"input {name!r} must be {self.type}, got {shown_json(value)}")
        if self.json_schema is not None:
            import jsonschema

            try:
                jsonschema.validate(value, self.json_schema)
            except jsonschema.SchemaError as exc:  # an unchecked spec (validation says so)
                raise ValueError(f"input {name!r}: its schema is not a valid JSON Schema: "
                                 f"{exc.message}") from None
            except jsonschema.ValidationError as exc:
                # jsonschema's messages echo the value whole (``'aaa...' is too long``)
                message = exc.message.replace(repr(exc.instance), shown(exc.instance))
                raise ValueError(f"input {name!r}: {message}") from None
        return value


class OutputSpec(_Model):
    value: Any = Field(alias="from", description="A reference such as `${steps.a.output}`.")
    type: JSONType = Field("any", description="JSON type the value must have (a value from a "
                           "step a branch did not take is null, whatever the type).")
    description: str = ""
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="A JSON Schema the value must satisfy (checked when "
        "the run ends; a value from a step a branch did not take is null, unchecked).")


class ModelConfig(_Model):
    """How an LLM step's `model:` alias is served."""

    backend: str = Field("local", description="local | openai | simulated | a registered name")
    model: str | None = Field(None, description="Model name sent to the server.")
    base_url: str | None = Field(None, description="OpenAI-compatible server URL.")
    api_key_env: str | None = Field(None, description="Environment variable holding the key.")
    concurrency: OptionalInteger = Field(None, ge=1, description="Calls in flight at once.")
    request_timeout_s: OptionalNumber = Field(None, gt=0, description="HTTP timeout per call.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Backend-specific settings (see the YAML reference)."
    )


class Budget(_Model):
    max_tokens: OptionalInteger = Field(
        None, ge=1, description="Tokens (prompt + completion) a run may spend, its "
        "sub-workflows' runs included; steps that spend tokens are not dispatched once it is "
        "spent (steps in flight then finish, so a run may end above it).")


class Defaults(_Model):
    timeout_s: OptionalNumber = Field(None, gt=0, description="Per-attempt timeout of every step.")
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retry policy of every step; a step's "
        "`retry:` overrides it field by field.")
    tool_concurrency: Integer = Field(16, ge=1, description="Tool calls running at once.")


class WorkflowSpec(_Model):
    """A whole workflow."""

    version: Annotated[Literal[1], NOT_BOOL] = Field(1, description="Format version of the file.")
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="Workflow name (in traces).")
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict,
                                         description="Typed inputs by name.")
    outputs: dict[str, OutputSpec] = Field(
        default_factory=dict, description="Named outputs: a reference, or {from, type}. "
        "Without outputs, the output of the only final step (or of each).")
    models: dict[str, ModelConfig] = Field(
        default_factory=dict, description="Model aliases used by `model:` of steps; "
        "`default` is used when a step names none (the bundled local model if absent).")
    tools: dict[ToolName, str] = Field(
        default_factory=dict, description="Extra tools: name -> `module:function`."
    )
    defaults: Defaults = Field(default_factory=Defaults, description="Step defaults.")
    budget: Budget = Field(default_factory=Budget, description="Run budgets.")
    steps: list[Step] = Field(default_factory=list, description="The steps (see step kinds).")

    @field_validator("outputs", mode="before")
    @classmethod
    def _short_outputs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"from": v} if not isinstance(v, dict) else v) for k, v in value.items()}
        return value

    def step(self, step_id: str) -> Any:
        """Return the step with this id.

        :raises KeyError: when there is none.
        """
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)
