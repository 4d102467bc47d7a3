"""Backoff for retryable failures: exponential, capped, with jitter. Pure."""

from __future__ import annotations

import random

from orchestrator.spec.base import RetryPolicy


def backoff_s(policy: RetryPolicy, failed_attempt: int, rng: random.Random | None = None,
              *, at_least_s: float | None = None) -> float:
    """Delay before the attempt after `failed_attempt` (1-based).

    ``initial * multiplier**(failed_attempt-1)``, capped at ``max_backoff_s``, then
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``. A delay shorter than
    ``at_least_s`` (the server's ``Retry-After``) becomes ``at_least_s`` scaled by a
    random factor in ``[1, 1 + jitter]``: never sooner than the server asked, and steps
    told the same wait do not all come back at the same instant. ``max_backoff_s`` caps
    ``at_least_s`` too (as it caps the exponential delay, before the jitter): the
    policy's bound on one delay holds whatever a server answers, so a ``Retry-After``
    of an hour waits ``max_backoff_s`` (30 s by default) and tries again.

    :param at_least_s: the wait the failure asked for (see
        :func:`orchestrator.errors.requested_wait_s`), or None.
    """
    uniform = (rng or random).uniform
    base = min(policy.max_backoff_s, policy.initial_backoff_s * policy.multiplier ** (failed_attempt - 1))
    delay = max(0.0, base * (1.0 + uniform(-policy.jitter, policy.jitter)))
    if at_least_s is not None:
        floor = min(at_least_s, policy.max_backoff_s)
        if delay < floor:
            delay = floor * (1.0 + uniform(0.0, policy.jitter))
    return delay
