"""`--model NAME=FILE` given twice for one NAME is refused (the second silently won)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_model_given_twice_is_refused(tmp_path: Path) -> None:
    flow = tmp_path / "t.yaml"
    flow.write_text("name: t\nsteps:\n  - {id: a, kind: llm, prompt: hi}\n")
    fast = tmp_path / "fast.yaml"
    fast.write_text("backend: simulated\noptions: {time_scale: 0}\n")
    slow = tmp_path / "slow.yaml"
    slow.write_text("backend: simulated\n")
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(flow),
                           "--model", f"default={fast}", "--model", f"default={slow}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"error: --model default is given twice ({fast}, then {slow}): give it once" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
