"""A step whose id is a duplicate is still checked: its references, `after:` and names
are reported in the same pass as the duplicate id (they were reported only once the
duplicate was renamed)."""

from __future__ import annotations

from orchestrator.graph.validate import validate_text

FLOW = """\
name: w
steps:
  - id: a
    kind: llm
    prompt: hi
  - id: x
    kind: llm
    prompt: "{{ steps.a.output }}"
  - id: a
    kind: llm
    prompt: "{{ steps.x.output }} {{ steps.ghost.output }}"
    after: [b]
  - id: t
    kind: tool
    tool: calc
    args: {expression: "1"}
"""


def test_a_duplicate_steps_own_problems_are_reported_with_it() -> None:
    problems = [(p.line, p.message) for p in validate_text(FLOW, "w.yaml")]
    assert problems == [
        (9, "duplicate step id 'a'"),
        (11, "unknown step 'ghost' in `steps.ghost.output`"),
        (12, "unknown step 'b' in `b`"),
    ]


def test_a_duplicate_may_refer_to_steps_above_it() -> None:
    # x is defined after the first 'a' but before the duplicate: no forward reference
    flow = FLOW.replace(" {{ steps.ghost.output }}", "").replace("    after: [b]\n", "")
    assert [p.message for p in validate_text(flow, "w.yaml")] == ["duplicate step id 'a'"]
