"""Shapes whose cost once grew with the square of their size, each at two sizes.

Usage: python bench/shapes_bench.py [--scale 1.0] [--only NAME ...]

Each shape is timed at n and 2n (CPU seconds of this process, ``time.process_time``:
wall time on a shared machine says little); ``ratio`` is the second over the first, about
2 where the cost grows linearly, 4 where it grows with the square:

* ``validate-bad-refs``: ``validate_file`` of n tool steps, each referring to a step that
  does not exist (each problem's hint);
* ``validate-hyphenated``: ``validate_file`` of a chain of n LLM steps with ids holding
  ``-``, each prompt referring to the step before;
* ``map-concurrency``: a run of a ``map`` of the ``calc`` tool over n items with
  ``concurrency: 4`` (memory store);
* ``workflow-steps``: a run of n ``workflow`` steps, each calling a one-step child.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from orchestrator import Workflow
from orchestrator.graph.validate import validate_file

CHILD = """\
name: child
inputs:
  x: {type: integer}
steps:
  - id: a
    kind: tool
    tool: calc
    args: {expression: "${inputs.x} + 1"}
"""


def _bad_refs(n: int) -> str:
    lines = [f"name: bad{n}", "steps:"]
    for i in range(n):
        lines += [f"  - id: s{i}", "    kind: tool", "    tool: calc",
                  f"    args: {{expression: \"${{steps.t{i}.output}}\"}}"]
    return "\n".join(lines) + "\n"


def _hyphenated(n: int) -> str:
    lines = [f"name: chain{n}", "models:", "  default: {backend: simulated}", "steps:",
             "  - id: step-0", "    kind: llm", "    prompt: start"]
    for i in range(1, n):
        lines += [f"  - id: step-{i}", "    kind: llm",
                  f"    prompt: \"go on from ${{steps.step-{i - 1}.output}}\""]
    return "\n".join(lines) + "\n"


def _map(n: int) -> str:
    del n  # the items are the run's input
    return """\
name: map
inputs:
  xs: {type: array}
steps:
  - id: m
    kind: map
    over: ${inputs.xs}
    concurrency: 4
    step:
      kind: tool
      tool: calc
      args: {expression: "${item} + 1"}
"""


def _workflow_steps(n: int) -> str:
    lines = [f"name: calls{n}", "steps:"]
    for i in range(n):
        lines += [f"  - id: s{i}", "    kind: workflow", "    workflow: child.yaml",
                  f"    inputs: {{x: {i}}}"]
    return "\n".join(lines) + "\n"


def _validate(text: Callable[[int], str]) -> Callable[[Path, int], float]:
    def measure(folder: Path, n: int) -> float:
        path = folder / f"w{n}.yaml"
        path.write_text(text(n))
        start = time.process_time()
        validate_file(path)
        return time.process_time() - start
    return measure


def _run(text: Callable[[int], str], inputs: Callable[[int], dict[str, object]]
         ) -> Callable[[Path, int], float]:
    def measure(folder: Path, n: int) -> float:
        path = folder / f"w{n}.yaml"
        path.write_text(text(n))
        wf = Workflow.from_yaml(path)
        start = time.process_time()
        result = anyio.run(lambda: wf.run(inputs(n), backend="simulated"))
        took = time.process_time() - start
        if result.status != "succeeded":
            raise SystemExit(f"{path.name}: {result.status}: {result.error}")
        return took
    return measure


SHAPES: dict[str, tuple[int, Callable[[Path, int], float]]] = {
    "validate-bad-refs": (2000, _validate(_bad_refs)),
    "validate-hyphenated": (2000, _validate(_hyphenated)),
    "map-concurrency": (20000, _run(_map, lambda n: {"xs": list(range(n))})),
    "workflow-steps": (1000, _run(_workflow_steps, lambda n: {})),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size")
    parser.add_argument("--only", nargs="*", choices=sorted(SHAPES), help="these shapes")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "child.yaml").write_text(CHILD)
        for name in args.only or SHAPES:
            size, measure = SHAPES[name]
            n = max(1, int(size * args.scale))
            first, second = measure(folder, n), measure(folder, 2 * n)
            rows.append({"shape": name, "n": n, "cpu_s": round(first, 2),
                         "2n": 2 * n, "cpu_s_2n": round(second, 2),
                         "ratio": round(second / first, 2) if first else None})
            print(f"| {name} | {n} | {first:.2f} | {2 * n} | {second:.2f} | "
                  f"{second / first:.2f} |" if first else f"| {name} | {n} | 0 |", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
