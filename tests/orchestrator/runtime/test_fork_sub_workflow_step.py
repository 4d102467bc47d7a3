"""A fork from a step of a sub-workflow (``--from w.c2``, or ``--from c2`` where only
the sub-workflow has ``c2``): the sub-workflow's steps run in a run of their own, which
is forked instead, and the message says so, naming that run where the trace store the
fork records to holds it. (It said the recorded run had no such step, and that 'w'
"added no step at run time", or listed the workflow's steps only.) On every store
backend; forking the child run works."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import PonderError
from orchestrator.runtime.durable import replay
from orchestrator.store import StoreHook, TraceStore
from tests.orchestrator.runtime.test_durable_children import TALK
from tests.store.conftest import recorded_with_child

pytestmark = pytest.mark.anyio

MAIN = """\
name: main
steps:
  - {id: w, kind: workflow, workflow: talk.yaml}
  - {id: z, kind: tool, tool: calc, args: {expression: "1 + 1"}, after: [w]}
"""


async def test_a_fork_from_a_sub_workflows_step_names_the_run_to_fork(
        tmp_path: Path, trace_store: TraceStore) -> None:
    whole, recorder, registry, child_id = await recorded_with_child(
        tmp_path, MAIN, {"talk.yaml": TALK})
    assert whole.ok, whole.error
    parent = await recorder.events(whole.run_id)
    child = await recorder.events(child_id)
    await trace_store.append(parent)
    await trace_store.append(child)
    hooks = [StoreHook(trace_store)]

    with pytest.raises(PonderError) as dotted:
        await replay(parent, from_step="w.c2", hooks=hooks, registry=registry)
    assert str(dotted.value) == (
        "cannot fork from 'w.c2': 'c2' is a step of the sub-workflow that 'w' runs, in a "
        f"run of its own: fork that run (`ponder replay {child_id} --from c2`), or run 'w' "
        "again whole (--from w)")
    with pytest.raises(PonderError) as bare:
        await replay(parent, from_step="c2", hooks=hooks, registry=registry)
    assert str(bare.value).startswith("no step 'c2' in workflow 'main'; steps: w, z; a step "
                                      "of a sub-workflow is forked in that sub-workflow's run")
    assert f"`ponder show {whole.run_id}` names the run of 'w'" in str(bare.value)
    # without a store to look in, the message says how to find it
    with pytest.raises(PonderError, match=f"`ponder show {whole.run_id}` names the run"):
        await replay(parent, from_step="w.c2", registry=registry)

    forked = await replay(child, from_step="c2", hooks=hooks, registry=registry)
    assert forked.ok, forked.error
