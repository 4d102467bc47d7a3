"""The README's Python SDK section: `wf.stream()` gives step-level events, a step's text
whole as its `step_succeeded` event's `output`."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


def test_the_readme_says_what_the_stream_gives() -> None:
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert ("a step's text comes whole, as its `step_succeeded` event's `output`" in text)


async def test_a_streamed_step_text_comes_whole_on_step_succeeded() -> None:
    wf = Workflow.from_yaml(ROOT / "examples" / "quickstart.yaml")
    result = await wf.run({}, backend="simulated")
    texts = {s.id: s.output for s in result.steps}
    seen: dict[str, object] = {}
    async for event in wf.stream({}, backend="simulated"):
        assert event.kind != "step_succeeded" or event.step_id not in seen
        if event.kind == "step_succeeded":
            seen[event.step_id] = event.output
    assert seen == texts  # the simulated backend is seeded: the same texts each run
