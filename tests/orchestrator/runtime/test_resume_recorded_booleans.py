"""A run recorded before Ponder refused a boolean where a number belongs: its workflow
said ``max_tokens: true``, which ran with 1 token. Its recorded workflow no longer read as
one (``steps.1.llm.max_tokens: a number, not a boolean``), so the run could be neither
resumed nor replayed. It now reads as it ran: each such boolean is the number it was."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import PonderError
from orchestrator.runtime.durable import replay, resume
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

FLOW = """\
name: w
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text}}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: llm, prompt: "Say a long sentence about {{ steps.a.output }}.",
     max_tokens: 8, after: [a]}
  - id: m
    kind: map
    over: [1, 2]
    after: [b]
    step: {kind: llm, prompt: "Count to {{ item }}.", temperature: 0.5}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _old_trace(**changed: Any) -> list[Any]:
    """A run of FLOW cut once `a` succeeded, whose recorded workflow has ``b``'s field
    ``max_tokens`` true and ``m``'s body's ``temperature`` false (what an older Ponder
    ran), and the fields ``changed`` of ``b``."""
    store = MemoryStore()
    done = await Workflow.from_yaml_text(FLOW).run(hooks=[StoreHook(store)])
    assert done.ok, done.error
    events = list(await store.events(done.run_id))
    cut = next(i for i, e in enumerate(events)
               if e.kind == "step_succeeded" and e.step_id == "a")
    spec = dict(events[0].spec)
    steps = [dict(s) for s in spec["steps"]]
    steps[1].update({"max_tokens": True, **changed})
    steps[2]["step"] = {**steps[2]["step"], "temperature": False}
    spec["steps"] = steps
    events[0] = events[0].model_copy(update={"spec": spec, "source": None})
    return events[:cut + 1]


async def test_a_run_recorded_with_a_boolean_for_a_number_resumes_as_it_ran() -> None:
    events = await _old_trace()
    store = MemoryStore()
    await store.append(events)
    resumed = await resume(events, hooks=[StoreHook(store)])
    assert resumed.ok, resumed.error
    after = (await store.events(resumed.run_id))[len(events):]
    (b,) = [e for e in after if e.kind == "step_succeeded" and e.step_id == "b"]
    assert b.usage.completion_tokens == 1  # max_tokens: true ran with 1 token
    started = after[0]
    assert started.kind == "run_started"
    assert started.spec["steps"][1]["max_tokens"] == 1
    assert started.spec["steps"][2]["step"].get("temperature", 0) == 0  # (the default)


async def test_it_replays_and_forks_as_it_ran() -> None:
    events = await _old_trace()
    assert (await replay(events, from_step="b")).ok
    whole = await resume(events)
    assert whole.ok, whole.error


async def test_a_boolean_beside_another_problem_names_the_other() -> None:
    events = await _old_trace(nosuch=1)
    with pytest.raises(PonderError) as info:
        await resume(events)
    message = str(info.value)
    assert "does not read as a workflow of this version of Ponder" in message
    assert "nosuch" in message and "boolean" not in message
