"""A run whose recorded workflow does not read as one of this version of Ponder (a trace
written by, or imported from, another version): `resume` and `replay` say so, naming
the run and the first problem, instead of raising pydantic's ValidationError (which
`ponder resume` / `ponder replay` reported as an internal error, exit 2, several lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import PonderError
from orchestrator.runtime.durable import replay, resume
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

FLOW = """\
name: w
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
outputs:
  a: ${steps.a.output}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def unreadable(tmp_path: Path) -> list[Any]:
    """A run of FLOW, cut before its end, whose recorded workflow has a step of a kind
    this version does not know, and no source file."""
    wf_file = tmp_path / "w.yaml"
    wf_file.write_text(FLOW)
    store = MemoryStore()
    done = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    events = [e for e in await store.events(done.run_id) if e.kind != "run_finished"]
    spec = dict(events[0].spec)
    spec["steps"] = [{**spec["steps"][0], "kind": "nosuch"}]
    events[0] = events[0].model_copy(update={"spec": spec, "source": None})
    return events


async def test_resume_names_the_run_and_the_problem(tmp_path: Path) -> None:
    events = await unreadable(tmp_path)
    with pytest.raises(PonderError) as info:
        await resume(events)
    message = str(info.value)
    assert message.startswith(f"run {events[0].run_id}: the workflow 'w' its trace records "
                              "does not read as a workflow of this version of Ponder "
                              "(steps.0: Input tag 'nosuch'")
    assert "\n" not in message and "--workflow" not in message


async def test_replay_says_to_give_the_file(tmp_path: Path) -> None:
    events = await unreadable(tmp_path)
    with pytest.raises(PonderError, match=r"\); replay it with its file \(--workflow FILE\)$"):
        await replay(events)
    again = await replay(events, workflow_file=tmp_path / "w.yaml")
    assert again.ok and again.output == {"a": 2}
