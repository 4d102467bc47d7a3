"""A static plan's step with a bad reference is still held to the plan step's `tools:`
allowlist: the two problems are independent, and validate reports both in one pass."""

from __future__ import annotations

from pathlib import Path

from orchestrator.graph.validate import validate_file

MAIN = """\
name: main
tools:
  lookup: "tools:lookup"
steps:
  - id: p
    kind: plan
    planner: static
    goal: g
    tools: [lookup]
    options:
      steps:
        - {id: out, kind: tool, tool: calc, args: {expression: "${steps.zzz.output}"}}
        - {id: typo, kind: tool, tool: nosuch, args: {x: "${steps.yyy.output}"}}
"""


def test_a_bad_reference_does_not_hide_the_allowlist_breach(tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text("def lookup(city: str) -> int:\n    return 1\n")
    main = tmp_path / "main.yaml"
    main.write_text(MAIN)
    found = [(p.line, p.message) for p in validate_file(main)]
    assert found == [
        (12, "plan 'p': step 'out' refers to 'zzz', which is not an earlier step of the "
             "plan nor a dependency of the plan step"),
        (12, "plan 'p': step 'out' calls tool 'calc', which is not allowed here "
             "(allowed: lookup)"),
        (13, "plan 'p': step 'typo' refers to 'yyy', which is not an earlier step of the "
             "plan nor a dependency of the plan step"),
        # an unknown tool is not also named as outside the allowlist
        (13, "unknown tool 'nosuch'"),
    ]
