"""A tab in a workflow's indentation is a located problem whose hint says what to do."""

from __future__ import annotations

from orchestrator.spec.loader import parse_yaml


def test_a_tab_indent_says_yaml_indents_with_spaces() -> None:
    text = "name: t\nsteps:\n  - id: a\n    kind: tool\n    tool: calc\n    args:\n\tx: 1\n"
    _, _, problems = parse_yaml(text, "tabs.yaml")
    assert [(p.line, p.column, p.hint) for p in problems] == [
        (7, 1, "YAML indents with spaces only: replace the tab with spaces")]


def test_other_syntax_errors_keep_their_hint() -> None:
    # (not an unclosed `[`: what the file ends inside has a hint of its own)
    _, _, problems = parse_yaml("name: t\nsteps:\n  - id: a\n   kind: llm\n", "b.yaml")
    assert [p.hint for p in problems] == ["check indentation, colons and quotes near here"]
