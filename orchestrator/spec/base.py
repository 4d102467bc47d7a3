"""Fields every step kind shares (its own module so that step kinds can live apart)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Model):
    """Retries for retryable errors only (timeouts, connection errors, HTTP 429/5xx, a
    tool's TimeoutError or ConnectionError)."""

    max_attempts: int = Field(3, ge=1, le=100, description="Attempts in all, the first included.")
    # bounded so that a typo cannot park a run for ages nor overflow a float (100**99)
    initial_backoff_s: float = Field(0.5, ge=0, le=3600,
                                     description="Delay before the second attempt.")
    max_backoff_s: float = Field(30.0, ge=0, le=86400, description="Upper bound of one delay.")
    multiplier: float = Field(2.0, ge=1.0, le=100, description="Growth of the delay per attempt.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random +/- fraction applied to a delay.")


class StepBase(_Model):
    id: str = Field(pattern=STEP_ID_PATTERN, description="Unique step id.")
    description: str = ""
    after: list[str] = Field(
        default_factory=list, description="Extra ordering dependencies (step ids)."
    )
    timeout_s: float | None = Field(None, gt=0, description="Per-attempt timeout in seconds.")
    retry: RetryPolicy | None = Field(None, description="Overrides the workflow's default.")

    #: fields whose `${...}` references are resolved before execution (custom kinds)
    resolved_fields: ClassVar[tuple[str, ...]] = ()
    #: fields rendered as Jinja2 templates before execution (custom kinds)
    template_fields: ClassVar[tuple[str, ...]] = ()
