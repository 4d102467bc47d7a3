"""`durable.replayed_workflow`: the workflow `replay` runs for a recording, which `ponder
replay` checks its --input options against before it starts: the file given, else the
recorded source file where it still exists, else the workflow recorded in the trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.runtime.durable import recording_from_events, replay, replayed_workflow
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

FLOW = """\
name: {name}
steps:
  - {{id: a, kind: tool, tool: calc, args: {{expression: "{expression}"}}}}
outputs:
  a: ${{steps.a.output}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _recorded(tmp_path: Path) -> tuple[Path, list[object]]:
    wf_file = tmp_path / "w.yaml"
    wf_file.write_text(FLOW.format(name="recorded", expression="1 + 1"))
    store = MemoryStore()
    done = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    assert done.ok, done.error
    return wf_file, list(await store.events(done.run_id))


async def test_the_file_given_then_the_recorded_file_then_the_recorded_spec(
        tmp_path: Path) -> None:
    wf_file, events = await _recorded(tmp_path)
    rec = recording_from_events(events)
    other = tmp_path / "other.yaml"
    other.write_text(FLOW.format(name="given", expression="2 + 2"))
    assert replayed_workflow(rec, workflow_file=other).spec.name == "given"

    wf_file.write_text(FLOW.format(name="edited", expression="1 + 1"))
    assert replayed_workflow(rec).spec.name == "edited"  # the file, as it is now

    wf_file.unlink()
    assert replayed_workflow(rec).spec.name == "recorded"


async def test_replay_runs_the_workflow_it_names(tmp_path: Path) -> None:
    wf_file, events = await _recorded(tmp_path)
    wf_file.write_text(FLOW.format(name="edited", expression="1 + 1"))
    again = await replay(events)
    assert again.ok and again.workflow == "edited" == replayed_workflow(
        recording_from_events(events)).spec.name


async def test_a_file_given_that_is_missing_is_an_error_naming_it(tmp_path: Path) -> None:
    """It was passed over for the recorded workflow, silently: the replay ran another
    workflow than the one asked for (`ponder replay --workflow` checks the file first)."""
    _, events = await _recorded(tmp_path)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ValidationFailed) as info:
        replayed_workflow(recording_from_events(events), workflow_file=missing)
    assert "missing.yaml" in str(info.value)
    with pytest.raises(ValidationFailed, match=r"missing\.yaml"):
        await replay(events, workflow_file=missing)
