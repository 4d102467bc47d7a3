"""Renders templates that once ran out of memory or time, in a process of their own held
to limits: a regression fails its test (MemoryError, out of time) instead of taking the
machine or hanging the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: renders each template given on stdin (a JSON list), each held to ALARM seconds, the
#: process to MEMORY bytes and CPU seconds of CPU (Python's sum of lists does not stop
#: for a signal) when set, and writes what each raised
_RENDER_ALL = """
import json, resource, signal, sys, time
alarm_s, memory, cpu_s = (json.loads(a) for a in sys.argv[1:4])
if memory:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
if cpu_s:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
from orchestrator.spec import templates

def out_of_time(*_):
    raise TimeoutError("out of time")

signal.signal(signal.SIGALRM, out_of_time)
out = []
for source in json.load(sys.stdin):
    start = time.perf_counter()
    signal.alarm(alarm_s)
    try:
        templates.render(source, {})
        out.append(["rendered", 0, 0.0])
    except BaseException as exc:
        out.append([str(exc), getattr(exc, "line", 0), time.perf_counter() - start])
    finally:
        signal.alarm(0)
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Outcome:
    """What rendering one template did: its error's text ("rendered" when none), the
    template line the error names, and the seconds it took."""

    message: str
    line: int
    seconds: float


def render_each(sources: list[str], *, alarm_s: int, memory: int | None = None,
                cpu_s: int | None = None, timeout_s: float = 600) -> dict[str, Outcome]:
    """Each of ``sources`` rendered in one process of its own, under the limits."""
    done = subprocess.run(
        [sys.executable, "-c", _RENDER_ALL, *(json.dumps(v) for v in (alarm_s, memory, cpu_s))],
        cwd=Path(__file__).parents[1], text=True, input=json.dumps(sources),
        capture_output=True, timeout=timeout_s, check=True)
    return {source: Outcome(*row)
            for source, row in zip(sources, json.loads(done.stdout), strict=True)}
