"""The error of a ``sample`` step without a join whose samples failed: it quoted the first
failure and how many failed, but not which sample (nor its child step, whose attempts the
trace holds) nor which others; now it names each failed sample by index, and the first
one's child step with its error."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

FAILURE = "fake: scripted failure"


async def _failed(kit: Any, n: int, failing: set[int], **step: Any) -> str:
    """The error of a sample step of ``n`` samples whose samples ``failing`` fail (one
    request at a time, so that sample i is the engine's call i)."""
    replies = [kit.Reply(f"s{i}", fail=i in failing) for i in range(n)]
    fake = kit.FakeBackend(kit.by_pattern({"Q": replies}), supports_n=False)
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": n,
                                "concurrency": 1, "retry": {"max_attempts": 1}, **step}]),
                      fake=fake)
    assert not r.result.ok
    assert r.result.error == f"step 's' failed: {r.failed('s').error}"
    return str(r.failed("s").error)


async def test_the_failed_samples_are_named_with_the_first_ones_child(kit: Any) -> None:
    error = await _failed(kit, 4, {1, 3})
    assert error.startswith("sample 's': 2 of 4 samples failed (samples 1, 3; no join handles "
                            "failures): sample 1 (child 's[1]'): ")
    assert error.endswith(FAILURE)


async def test_one_request_for_every_sample_names_its_child(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("x", fail=True)}))
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": 3,
                                "retry": {"max_attempts": 1}}]), fake=fake)
    error = str(r.failed("s").error)
    assert error.startswith("sample 's': 3 of 3 samples failed (samples 0, 1, 2; no join handles "
                            "failures): sample 0 (child 's[0:3]'): ")
    assert error.endswith(FAILURE)


async def test_many_failed_samples_are_listed_up_to_eight(kit: Any) -> None:
    error = await _failed(kit, 12, set(range(1, 12)))
    assert error.startswith("sample 's': 11 of 12 samples failed (samples 1, 2, 3, 4, 5, 6, 7, "
                            "8 and 3 more; no join handles failures): sample 1 (child 's[1]'): ")


async def test_a_single_failed_sample_is_named_once(kit: Any) -> None:
    error = await _failed(kit, 3, {2})
    assert error == ("sample 's': 1 of 3 samples failed (no join handles failures): "
                     f"sample 2 (child 's[2]'): {FAILURE}")
