"""The templates a spawn's children and a join's scorers are rendered with are checked
before a run, with the names they get: they passed `ponder validate`, then failed every
child when it ran (an unknown step in a child's prompt as an internal error)."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_text

HEAD = """\
name: w
models:
  default: {backend: simulated}
steps:
  - id: a
    kind: llm
    prompt: hi
"""

SPAWN = HEAD + """\
  - id: t
    kind: spawn
    messages: [x, y]
    prompt: |
      {{ message }} {{ context }} {{ index }} {{ depth }} {{ steps.a.output }}
      {{ steps.q.output }} {{ inputs.zz }}
    system: "{{ mesage }}"
"""

JOIN = HEAD + """\
  - id: s
    kind: sample
    prompt: hi
  - id: j
    kind: join
    of: s
    reducer: best_of_n
    scorer:
      llm: default
      prompt: |
        {{ candidate }} {{ answer }} {{ index }} {{ steps.a.output }}
        {{ answr }}
  - id: k
    kind: join
    of: s
    reducer: first_finish
    check: {tool: calc, args: {expression: "${candidat}"}}
"""


def _problems(text: str) -> list[tuple[int, str]]:
    return [(p.line, p.message) for p in validate_text(text, "w.yaml")]


def test_a_spawn_childs_prompt_is_checked_with_its_names() -> None:
    assert _problems(SPAWN) == [
        (13, "unknown step 'q' in `steps.q.output`"),
        (13, "unknown input 'zz' in `inputs.zz`"),
        (14, "unknown name 'mesage' in `mesage`"),
    ]


def test_a_spawn_childs_workflow_inputs_are_checked_with_its_names() -> None:
    text = HEAD + """\
  - id: t
    kind: spawn
    messages: [x]
    workflow: child.yaml
    inputs: {topic: "${mesage}", n: "${index}"}
"""
    problems = [p for p in validate_text(text, "w.yaml") if "mesage" in p.message]
    assert [(p.line, p.message) for p in problems] == [
        (12, "unknown name 'mesage' in `${mesage}`")]


def test_a_scorers_prompt_and_a_checks_args_are_checked_with_their_names() -> None:
    assert _problems(JOIN) == [
        (19, "unknown name 'answr' in `answr`"),
        (23, "joins 'j' and 'k' both join fan-out 's', and 'k' (first_finish) cancels the "
             "children it does not need: 'j' would reduce only the children 'k' left"),
        (24, "unknown name 'candidat' in `${candidat}`"),
    ]


def test_the_default_child_prompt_scorer_prompt_and_inputs_pass() -> None:
    text = HEAD + """\
  - id: t
    kind: spawn
    messages: [x]
  - id: s
    kind: sample
    prompt: hi
  - id: j
    kind: join
    of: s
    reducer: best_of_n
    scorer: {llm: default}
  - id: k
    kind: join
    of: t
    reducer: best_of_n
    scorer: {tool: calc, args: {expression: "${index}"}}
"""
    assert _problems(text) == []


def test_an_sdk_spawn_is_checked_so_too() -> None:
    wf = Workflow("w", models={"default": {"backend": "simulated"}})
    wf.spawn("t", ["x"], prompt="{{ steps.q.output }} {{ message }}")
    with pytest.raises(ValidationFailed) as info:
        wf.run_sync(backend="simulated")
    assert [p.message for p in info.value.problems] == [
        "spawn step 't': prompt: unknown step 'q' in `steps.q.output`"]
