"""`resume`: which runs it continues, and what the resumed run keeps of its past."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.runtime import _process
from orchestrator.runtime.durable import RunStillRunning, resume
from orchestrator.store import MemoryStore, StoreHook

pytestmark = pytest.mark.anyio

TWO = """\
name: two
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}}
outputs:
  b: ${steps.b.output}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def other_process() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


async def _interrupted_after_a(tmp_path: Path, writer: dict[str, Any]) -> list[Any]:
    """The events of a run of TWO cut after `a`, as if written by ``writer``."""
    wf_file = tmp_path / "two.yaml"
    wf_file.write_text(TWO)
    store = MemoryStore()
    done = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    events = await store.events(done.run_id)
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "a")
    kept = [e for e in events if e.seq <= cut]
    kept[0] = kept[0].model_copy(update=writer)
    return kept


async def test_resume_refuses_a_run_whose_writer_is_alive(
        tmp_path: Path, other_process: subprocess.Popen[bytes]) -> None:
    pid = other_process.pid
    writer = {"writer_host": _process.host_name(), "writer_pid": pid,
              "writer_start": f"{_process._pid_namespace()}|{_process.process_start(pid)}"}
    events = await _interrupted_after_a(tmp_path, writer)
    with pytest.raises(RunStillRunning, match=f"still running \\(process {pid} on "):
        await resume(events)

    other_process.kill()
    other_process.wait()
    result = await resume(events)  # now interrupted: it continues
    assert result.ok and result.output == {"b": 3}
