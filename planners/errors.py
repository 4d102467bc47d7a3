"""Errors of the planners, under Ponder's own tree (:mod:`orchestrator.errors`)::

    PonderError
    ├── ConfigError
    │   └── PlannerConfigError   unknown planner, bad `options:`, tool allowlist naming
    │                            a tool that does not exist
    └── StepError
        └── PlanFailed           the plan step gave up: every repair of a malformed plan
                                 was rejected, the joiner never decided, replans ran
                                 out; the raw planner output is kept in ``raw_output``

A malformed plan is *not* an exception: it is a :class:`planners.base.PlanProblem`,
recorded as a ``plan_error`` event, and the planner is asked again. Only when the
repairs run out does it become :class:`PlanFailed`. Neither error is retryable
(:func:`orchestrator.errors.is_retryable`): asking again is already built in.
"""

from __future__ import annotations

from orchestrator.errors import ConfigError, StepError


class PlannerConfigError(ConfigError):
    """A plan step's configuration is wrong (the message names the value)."""


class PlanFailed(StepError):
    """A plan step gave up; ``raw_output`` holds the last raw planner or joiner output."""
