"""`--inputs-json` refuses NaN and Infinity inside values too, naming the path (a
workflow without `inputs:` checks none of its inputs: this is the only check there)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

NO_INPUTS = """\
name: t
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}
"""


@pytest.mark.parametrize(("given", "path"), [
    ('{"x": {"y": NaN}}', "x.y is NaN"),
    ('{"x": [1, NaN]}', "x[1] is NaN"),
    ('{"x": [{"z": -Infinity}]}', "x[0].z is -Infinity"),
    ('{"x": Infinity}', "x is Infinity"),
])
def test_inputs_json_refuses_nested_non_finite_numbers(tmp_path: Path, given: str,
                                                       path: str) -> None:
    flow = tmp_path / "t.yaml"
    flow.write_text(NO_INPUTS)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(flow),
                           "--inputs-json", given, "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["error"] == {"kind": "input", "location": None,
                            "message": f"--inputs-json: {path}, which JSON has no number for"}
    assert "Traceback" not in proc.stderr
