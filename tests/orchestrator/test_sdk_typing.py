"""A user's script type-checks against the SDK with ``mypy --strict``: the public types
are precise enough to catch the user's mistakes, and accept what works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = '''\
from collections.abc import Sequence

from orchestrator import Event, RunResult, Workflow, tool


@tool
def words(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


async def hook(events: Sequence[Event]) -> None:
    print(len(events))


def plain(events: Sequence[Event]) -> None:
    print(len(events))


async def main() -> None:
    wf = Workflow("w", inputs={"t": "string"})
    wf.register_tool(words)
    wf.llm("a", prompt="{{ inputs.t }}")
    result: RunResult = await wf.run({"t": "x"}, backend="simulated", hooks=[hook, plain])
    count: int = words("a b")
    print(result.output, count)
    async for event in wf.stream({"t": "x"}):
        if event.kind == "run_finished":
            status: str = event.status
            print(status)
        print(event.no_such_field)  # MISTAKE: no event has it
    wf.run_sync({"t": "x"}, backnd="simulated")  # MISTAKE: a misspelt option
'''


def test_a_users_script_type_checks_and_its_mistakes_are_found(tmp_path: Path) -> None:
    """The stream's events were ``Any`` and run_sync took ``**kwargs``: mypy found
    neither mistake; a plain-function hook was refused although it works."""
    script = tmp_path / "user.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--config-file=", "--cache-dir", str(tmp_path / "cache"), str(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    errors = re.findall(r"^[^:\n]+:(\d+): error: (.*)$", proc.stdout, re.M)
    mistakes = [i + 1 for i, line in enumerate(SCRIPT.splitlines()) if "# MISTAKE" in line]
    assert sorted({int(line) for line, _ in errors}) == mistakes, proc.stdout + proc.stderr
    assert all('"no_such_field"' in text for line, text in errors if int(line) == mistakes[0])
    assert all('"backnd"' in text for line, text in errors if int(line) == mistakes[1])
