"""A step's ``retry:`` overrides ``defaults.retry`` field by field. It replaced it whole:
with defaults ``{max_attempts: 5, initial_backoff_s: 0.01}`` a step setting only
``retry: {jitter: 0}`` got 3 attempts 0.5 s and 1 s apart, RetryPolicy's own defaults.
A map body's retry is over its map's, and the map's over the defaults, so too."""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.spec.base import RetryPolicy

pytestmark = pytest.mark.anyio

DEFAULTS = "defaults:\n  retry: {max_attempts: 5, initial_backoff_s: 0.01}\n"


class Flaky:
    """A tool that always times out (a retryable error), timing its calls."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, x: Any = None) -> Any:
        self.calls.append(time.monotonic())
        raise TimeoutError("flaky")

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.calls, self.calls[1:], strict=False)]


async def _calls(text: str) -> Flaky:
    flaky = Flaky()
    wf = Workflow.from_yaml_text(text)
    wf.register_tool(flaky, name="flaky")
    result = await wf.run({})
    assert not result.ok
    return flaky


async def test_a_steps_retry_keeps_the_defaults_it_does_not_set() -> None:
    flaky = await _calls("name: r\n" + DEFAULTS + "steps:\n  - id: t\n    kind: tool\n"
                         "    tool: flaky\n    args: {x: 1}\n    retry: {jitter: 0}\n")
    assert len(flaky.calls) == 5
    assert max(flaky.gaps()) < 0.3  # 0.01 s doubling, not 0.5 s


@pytest.mark.parametrize(("map_retry", "body_retry", "calls"), [
    ("{jitter: 0}", "{max_attempts: 2}", 2),  # the backoff is the defaults'
    ("{max_attempts: 4}", "{jitter: 0}", 4),  # the attempts are the map's
    ("{max_attempts: 4, initial_backoff_s: 0.02}", "", 4),
    ("", "{jitter: 0}", 5),  # the defaults'
])
async def test_a_map_bodys_retry_is_over_its_maps_and_the_maps_over_the_defaults(
        map_retry: str, body_retry: str, calls: int) -> None:
    text = ("name: m\n" + DEFAULTS + "steps:\n  - id: m\n    kind: map\n    over: [1, 2]\n"
            + (f"    retry: {map_retry}\n" if map_retry else "")
            + "    step: {kind: tool, tool: flaky, args: {x: 1}"
            + (f", retry: {body_retry}" if body_retry else "") + "}\n")
    flaky = await _calls(text)
    assert len(flaky.calls) == 2 * calls
    assert max(flaky.gaps()) < 0.3


def test_over_takes_only_the_fields_the_policy_does_not_set() -> None:
    outer = RetryPolicy(max_attempts=5, initial_backoff_s=0.01)
    merged = RetryPolicy(jitter=0, max_attempts=2).over(outer)
    assert (merged.max_attempts, merged.initial_backoff_s, merged.jitter,
            merged.multiplier) == (2, 0.01, 0, 2.0)
    assert merged.model_fields_set == {"max_attempts", "initial_backoff_s", "jitter"}
    own = RetryPolicy(max_attempts=2)
    assert own.over(RetryPolicy()) is own  # nothing to take: the policy itself
