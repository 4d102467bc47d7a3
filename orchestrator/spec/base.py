"""Fields every step kind shares (its own module so that step kinds can live apart)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"

#: the pydantic error type of a boolean given where a number belongs
BOOL_NOT_NUMBER = "bool_not_number"
#: the pydantic error type of a string given where a number belongs; its context names
#: what was expected (``expected``: "an integer", "a number") and, where the text reads
#: as one, the number as written without its quotes (``unquoted``)
STRING_NOT_NUMBER = "string_not_number"
#: the pydantic error type of a field a step kind has but does not use (the rest of the
#: step is still worth checking without it)
FIELD_NOT_USED = "field_not_used"


def _not_bool(value: Any) -> Any:
    """Refuse a boolean where a number belongs: pydantic's lax mode takes ``True`` as 1
    and ``False`` as 0, so ``max_tokens: true`` in a file (YAML reads ``yes`` and ``on``
    so too) or ``max_tokens=True`` in Python would run with a value nobody meant.

    :raises PydanticCustomError: of type :data:`BOOL_NOT_NUMBER`.
    """
    if isinstance(value, bool):
        raise PydanticCustomError(BOOL_NOT_NUMBER, "a number, not a boolean")
    return value


#: numbers as YAML 1.2's core schema writes them: the float form (an integer is one), and
#: an octal integer
_YAML12_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_YAML12_OCTAL = re.compile(r"0o[0-7]+")
_YAML11 = yaml.resolver.Resolver()


def yaml12_only_number(text: str) -> int | float | None:
    """The number ``text`` is to YAML 1.2, by which editors check a workflow file against
    its JSON Schema, where PyYAML's YAML 1.1 reads it as text: ``1e-3`` and ``1.0e5``
    (1.1 wants a point and a signed exponent), ``0o17``. ``None`` for other text (``3``,
    which both read as a number, and ``abc``)."""
    tag = _YAML11.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag != "tag:yaml.org,2002:str":
        return None
    if _YAML12_OCTAL.fullmatch(text):
        return int(text[2:], 8)
    if not _YAML12_NUMBER.fullmatch(text):
        return None
    return float(text)


_LAX_INT: TypeAdapter[int] = TypeAdapter(int)
_LAX_FLOAT: TypeAdapter[float] = TypeAdapter(float)


def _number_only(lax: TypeAdapter[Any], expected: str) -> Callable[[Any], Any]:
    """A check that refuses a boolean (:func:`_not_bool`) and a string where ``expected``
    belongs. pydantic's lax mode reads ``"3"`` as 3, where the published JSON Schema says
    integer: an editor flagged `n: "3"` that validation passed, and the two disagreed
    about what a workflow is. (A whole float, ``3.0``, stays an integer for both: JSON
    Schema counts a number by its value.)"""

    def check(value: Any) -> Any:
        if isinstance(value, str):
            number = yaml12_only_number(value)
            if number is not None:
                # written without quotes, PyYAML gave its text; and a plan's own steps
                # (a static plan's options) are recorded as they were read
                return number
            try:
                read = lax.validate_python(value)
            except ValidationError:
                return value  # no number: pydantic's own error says so
            context = {"expected": expected}
            if math.isfinite(read):
                context["unquoted"] = value.strip()
            raise PydanticCustomError(STRING_NOT_NUMBER, "{expected}, not a string", context)
        return _not_bool(value)

    return check


#: what a spec field that takes numbers is declared with, rather than ``int`` or ``float``
#: (a test checks that every numeric field of the spec refuses booleans and strings)
NOT_BOOL = BeforeValidator(_not_bool)
WHOLE_ONLY = BeforeValidator(_number_only(_LAX_INT, "an integer"))
NUMBER_ONLY = BeforeValidator(_number_only(_LAX_FLOAT, "a number"))
Integer = Annotated[int, WHOLE_ONLY]
Number = Annotated[float, NUMBER_ONLY]
# (not ``Integer | None``: pydantic would write a constraint of such a field, ``ge=1``,
# into the JSON Schema as an unknown keyword rather than as ``minimum``)
OptionalInteger = Annotated[int | None, WHOLE_ONLY]
OptionalNumber = Annotated[float | None, NUMBER_ONLY]

#: the description of ``top_p``, which every step kind that samples has
TOP_P_DOC = ("Nucleus sampling: sample only from the most likely tokens whose "
             "probabilities add up to top_p (0 < top_p <= 1). null: the backend's "
             "default (not sent).")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Model):
    """Retries for retryable errors only (timeouts, connection errors, HTTP 429/5xx, a
    tool's TimeoutError or ConnectionError)."""

    max_attempts: Integer = Field(3, ge=1, le=100, description="Attempts in all, the first included.")
    # bounded so that a typo cannot park a run for ages nor overflow a float (100**99)
    initial_backoff_s: Number = Field(0.5, ge=0, le=3600,
                                      description="Delay before the second attempt.")
    max_backoff_s: Number = Field(30.0, ge=0, le=86400, description="Upper bound of one delay.")
    multiplier: Number = Field(2.0, ge=1.0, le=100, description="Growth of the delay per attempt.")
    jitter: Number = Field(0.2, ge=0, le=1, description="Random +/- fraction applied to a delay.")

    def over(self, outer: RetryPolicy) -> RetryPolicy:
        """This policy with each field it does not set taken from ``outer`` (a step's
        ``retry:`` over ``defaults.retry``, a map body's over its map's): the fields that
        neither sets are this model's defaults.

        :returns: this policy itself when ``outer`` sets nothing it lacks.
        """
        taken = {f: getattr(outer, f) for f in outer.model_fields_set
                 if f not in self.model_fields_set}
        return self.model_copy(update=taken) if taken else self


class StepBase(_Model):
    id: str = Field(pattern=STEP_ID_PATTERN, description="Unique step id.")
    description: str = ""
    after: list[str] = Field(
        default_factory=list, description="Extra ordering dependencies (step ids)."
    )
    timeout_s: OptionalNumber = Field(None, gt=0, description="Per-attempt timeout in seconds.")
    retry: RetryPolicy | None = Field(
        None, description="Overrides `defaults.retry` field by field: a field not set here "
        "is the default's.")

    #: fields whose `${...}` references are resolved before execution (custom kinds)
    resolved_fields: ClassVar[tuple[str, ...]] = ()
    #: fields rendered as Jinja2 templates before execution (custom kinds)
    template_fields: ClassVar[tuple[str, ...]] = ()
