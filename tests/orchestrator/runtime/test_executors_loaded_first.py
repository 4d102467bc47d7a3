"""The executors of a run's step kinds are loaded before its first step starts. Loading
one the first time imports its module (the fan-out executors' took about 0.6 s), and
that happened inside the scheduler's loop when the first step of its kind was
dispatched: every step then running was held up (a 0.05 s tool step was recorded as
taking 0.6 s). Checked in a fresh interpreter, where nothing has imported them yet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
from orchestrator import Workflow

FLOW = '''
name: first
steps:
  - {id: a, kind: tool, tool: sleep, args: {seconds: 0.05}}
  - id: m
    kind: map
    over: [1, 2]
    step: {kind: tool, tool: calc, args: {expression: "${item} + 1"}}
  - {id: j, kind: join, of: m}
'''
loaded_at_start = []

def hook(batch):
    for e in batch:
        if e.kind == "step_started" and not loaded_at_start:
            loaded_at_start.append("executors.fanout" in sys.modules)

assert "executors.fanout" not in sys.modules
result = Workflow.from_yaml_text(FLOW).run_sync(backend="simulated", hooks=[hook])
print(json.dumps({"ok": result.ok, "loaded": loaded_at_start}))
"""


def test_a_joins_executor_is_loaded_before_the_first_step_starts() -> None:
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"ok": True, "loaded": [True]}
