"""Backoff for retryable failures: exponential, capped, with jitter. Pure."""

from __future__ import annotations

import random

from orchestrator.spec.base import RetryPolicy


def backoff_s(policy: RetryPolicy, failed_attempt: int, rng: random.Random | None = None) -> float:
    """Delay before the attempt after `failed_attempt` (1-based).

    ``initial * multiplier**(failed_attempt-1)``, capped at ``max_backoff_s``, then
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``.
    """
    base = min(policy.max_backoff_s, policy.initial_backoff_s * policy.multiplier ** (failed_attempt - 1))
    r = (rng or random).uniform(-policy.jitter, policy.jitter)
    return max(0.0, base * (1.0 + r))
