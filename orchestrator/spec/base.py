"""Fields every step kind shares (its own module so that step kinds can live apart)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"

#: the pydantic error type of a boolean given where a number belongs
BOOL_NOT_NUMBER = "bool_not_number"
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


#: what a spec field that takes numbers is declared with, rather than ``int`` or ``float``
#: (a test checks that every numeric field of the spec refuses booleans)
NOT_BOOL = BeforeValidator(_not_bool)
Integer = Annotated[int, NOT_BOOL]
Number = Annotated[float, NOT_BOOL]
# (not ``Integer | None``: pydantic would write a constraint of such a field, ``ge=1``,
# into the JSON Schema as an unknown keyword rather than as ``minimum``)
OptionalInteger = Annotated[int | None, NOT_BOOL]
OptionalNumber = Annotated[float | None, NOT_BOOL]


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
