"""The README's Python SDK snippet runs as pasted into a file (on the bundled local model)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_sdk_snippet() -> str:
    """The first ```python block of README.md (the Python SDK section's)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert blocks, "README.md has no ```python block"
    return str(blocks[0])


def test_the_readme_sdk_snippet_compiles() -> None:
    # an `async for` outside a function, as the snippet once had, is a SyntaxError here
    compile(readme_sdk_snippet(), "README.md", "exec")


def test_the_readme_sdk_snippet_runs(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="needs the `local` extra (llama-cpp-python)")
    script = tmp_path / "snippet.py"
    script.write_text(readme_sdk_snippet(), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("succeeded {'sentence': "), proc.stdout
    assert "'words': " in lines[0]
    assert lines[1] == "run_started" and "run_finished" in lines
    assert "name: quickstart" in proc.stdout  # the YAML round trip printed
