"""A map's ``timeout_s`` and ``retry`` were accepted and silently ignored: a map with
``timeout_s: 0.3`` over a body that sleeps 2 s succeeded after 2 s, and ``retry:
{max_attempts: 1}`` on a map still tried a timed-out item 3 times. A map has one attempt
of its own and is never retried, so they are its items', as ``defaults:`` are for every
step: each item's attempts are bounded and retried by them, unless the body sets its
own."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio


def _flow(map_fields: str, body_fields: str = "", seconds: float = 5) -> str:
    return ("name: m\nsteps:\n  - id: m\n    kind: map\n    over: [1, 2]\n"
            f"{map_fields}"
            f"    step: {{kind: tool, tool: sleep, args: {{seconds: {seconds}}}{body_fields}}}\n")


class Flaky:
    """A tool that always times out (a retryable error), counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Any = None) -> Any:
        self.calls += 1
        raise TimeoutError("flaky")


async def _errors(text: str, tool: Flaky | None = None) -> dict[str, str | None]:
    wf = Workflow.from_yaml_text(text)
    if tool is not None:
        wf.register_tool(tool, name="flaky")
    result = await wf.run({})
    assert not result.ok
    return {s.id: s.error for s in result.steps}


async def test_a_maps_timeout_bounds_each_item() -> None:
    errors = await _errors(_flow("    timeout_s: 0.2\n    retry: {max_attempts: 1}\n"))
    assert errors["m[0]"] == "step 'm[0]' timed out after 0.2s"
    assert errors["m[1]"] == "step 'm[1]' timed out after 0.2s"
    assert errors["m"] == "2 of 2 items did not succeed: m[0], m[1]"


async def test_the_bodys_own_timeout_wins() -> None:
    errors = await _errors(_flow("    timeout_s: 30\n    retry: {max_attempts: 1}\n",
                                 ", timeout_s: 0.1"))
    assert errors["m[0]"] == "step 'm[0]' timed out after 0.1s"


@pytest.mark.parametrize(("map_retry", "body_retry", "calls"), [
    ("{max_attempts: 2, initial_backoff_s: 0}", "", 2),  # the default policy tries 3 times
    ("{max_attempts: 4, initial_backoff_s: 0}", ", retry: {max_attempts: 1}", 1),
])
async def test_a_maps_retry_is_its_items_unless_the_body_sets_one(
        map_retry: str, body_retry: str, calls: int) -> None:
    flaky = Flaky()
    text = ("name: m\nsteps:\n  - id: m\n    kind: map\n    over: [1]\n"
            f"    retry: {map_retry}\n"
            f"    step: {{kind: tool, tool: flaky, args: {{x: 1}}{body_retry}}}\n")
    errors = await _errors(text, flaky)
    assert errors["m[0]"] is not None and "flaky" in errors["m[0]"]
    assert flaky.calls == calls
