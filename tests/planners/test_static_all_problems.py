"""A static plan's problems are all reported in one go, each at its line: one problem
(an `output:` naming no step, an id used twice, an invalid step) hid the others, and
none is reported only because of another (an `output:` naming a step that is invalid
for another reason, a step reading one that is)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestrator.graph.validate import validate_text

ROOT = Path(__file__).resolve().parents[2]
HEAD = """name: w
steps:
  - id: p
    kind: plan
    planner: static
    goal: g
    options:
"""


def problems(options: str) -> list[tuple[int, str]]:
    return sorted((p.line, p.message) for p in validate_text(HEAD + options, "w.yaml"))


def test_an_unknown_tool_and_a_bad_output_are_both_reported() -> None:
    found = problems("""      output: nope
      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
        - id: b
          kind: tool
          tool: clac
          args: {expression: "${steps.a.output} + 1"}
""")
    assert found == [(8, "static plan: `output: nope` is not one of its steps (a, b)"),
                     (13, "unknown tool 'clac'")]


def test_a_duplicate_id_an_unknown_tool_and_a_bad_output_are_all_reported() -> None:
    found = problems("""      output: nope
      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
        - {id: a, kind: tool, tool: calc, args: {expression: "2"}}
        - id: b
          kind: tool
          tool: clac
          args: {expression: "${steps.a.output} + 1"}
""")
    assert found == [(8, "static plan: `output: nope` is not one of its steps (a, b)"),
                     (11, "static plan: step id 'a' is used twice"),
                     (14, "unknown tool 'clac'")]


def test_a_bad_reference_and_an_unknown_tool_are_both_reported() -> None:
    found = problems("""      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
        - id: b
          kind: tool
          tool: clac
          args: {expression: "${steps.aa.output} + 1"}
""")
    assert found == [(10, "plan 'p': step 'b' refers to 'aa', which is not an earlier step "
                          "of the plan nor a dependency of the plan step"),
                     (12, "unknown tool 'clac'")]


def test_an_unknown_option_hides_no_problem_of_the_steps() -> None:
    found = problems("""      outptu: b
      steps:
        - {id: a, kind: tool, tool: clac, args: {expression: "1"}}
""")
    assert [line for line, _ in found] == [8, 10], found
    assert "outptu" in found[0][1]
    assert found[1][1] == "unknown tool 'clac'"


def test_an_invalid_step_is_reported_once_and_not_again_through_the_others() -> None:
    """`output:` names the invalid step and another step reads it: neither is a problem
    of its own, and a third step's unknown tool is still found."""
    found = problems("""      output: b
      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
        - {id: b, kind: tool, args: {expression: "${steps.a.output}"}}
        - {id: c, kind: tool, tool: clac, args: {expression: "${steps.b.output}"}}
""")
    assert found == [(11, "static plan: options.steps[1]: tool: Field required"),
                     (12, "unknown tool 'clac'")]


def test_an_output_naming_a_step_without_an_id_is_not_reported() -> None:
    found = problems("""      output: b
      steps:
        - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
        - {kind: tool, tool: clac, args: {expression: "2"}}
""")
    assert [line for line, _ in found] == [11], found
    assert "id: Field required" in found[0][1]


def test_ponder_validate_reports_every_problem_of_the_example(tmp_path: Path) -> None:
    """The user's case: examples/planners/static.yaml with both typos."""
    text = (ROOT / "examples/planners/static.yaml").read_text()
    for before, after in [("output: per_km2", "output: nope"), ("tool: calc", "tool: clac")]:
        assert before in text
        text = text.replace(before, after)
    (tmp_path / "static.yaml").write_text(text)
    (tmp_path / "tools.py").write_text((ROOT / "examples/planners/tools.py").read_text())
    lines = text.splitlines()
    output = next(i for i, t in enumerate(lines, 1) if "output: nope" in t)
    tool = next(i for i, t in enumerate(lines, 1) if "tool: clac" in t)
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "validate", "static.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1, proc.stderr
    assert "2 problems found" in proc.stderr, proc.stderr
    assert f"static.yaml:{output}:7: error: static plan: `output: nope`" in proc.stderr
    assert f"static.yaml:{tool}:11: error: unknown tool 'clac'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_map_body_reading_a_step_outside_the_plan_is_reported() -> None:
    """A planned map's dependencies left out what its body reads (3d41c4c)."""
    text = HEAD + """      steps:
        - {id: m, kind: map, over: [1], step: {kind: tool, tool: calc,
           args: {expression: "${steps.zzz.output}"}}}
"""
    [problem] = validate_text(text, "w.yaml")
    assert problem.message == ("plan 'p': step 'm' refers to 'zzz', which is not an "
                               "earlier step of the plan nor a dependency of the plan step")
