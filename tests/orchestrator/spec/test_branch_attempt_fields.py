"""A branch step picks its path once, in the scheduler: it has no attempt for `timeout_s`
to bound or `retry` to repeat. Both were accepted and ignored without a word; they are now
refused at their lines, while a workflow's `defaults:` still apply to every other step."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_text
from orchestrator.sdk import Workflow
from orchestrator.spec.loader import load_yaml
from orchestrator.spec.models import BranchCase, BranchStep


def _yaml(extra: str) -> str:
    return ("name: w\ninputs:\n  x: {type: integer, default: 1}\nsteps:\n"
            "  - id: pick\n    kind: branch\n" + extra +
            "    cases:\n      - when: 'inputs.x > 0'\n        then: [pos]\n"
            "  - id: pos\n    kind: tool\n    tool: calc\n    args: {expression: '1 + 1'}\n")


@pytest.mark.parametrize(("extra", "field", "line"), [
    ("    timeout_s: 5\n", "timeout_s", 7),
    ("    retry: {max_attempts: 2}\n", "retry", 7),
])
def test_an_attempt_field_on_a_branch_is_refused_at_its_line(
        extra: str, field: str, line: int) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_yaml("w.yaml", text=_yaml(extra))
    text = "\n".join(p.format() for p in info.value.problems)
    assert f"w.yaml:{line}:5: error: steps.0.{field}: a branch step has no attempts" in text
    assert "Value error" not in text, text


def test_validate_reports_both_with_the_rest_of_the_workflow() -> None:
    problems = validate_text(_yaml("    timeout_s: 5\n    retry: {max_attempts: 2}\n"
                                   "    after: [nowhere]\n"), "w.yaml")
    text = "\n".join(p.format() for p in problems)
    assert "steps.0.timeout_s: a branch step" in text
    assert "steps.0.retry: a branch step" in text
    assert "nowhere" in text, text  # the step's other fields are still checked


def test_workflow_defaults_do_not_count_as_a_branch_field() -> None:
    text = _yaml("").replace("steps:\n", "defaults:\n  timeout_s: 5\n  retry: "
                             "{max_attempts: 2}\nsteps:\n", 1)
    spec, _ = load_yaml("w.yaml", text=text)
    assert spec.steps[0].timeout_s is None and spec.steps[0].retry is None
    assert Workflow.from_yaml_text(text).run_sync(backend="simulated").output == 2


def test_python_code_gets_the_same_refusal() -> None:
    with pytest.raises(ValidationError, match="a branch step has no attempts"):
        BranchStep(id="b", timeout_s=1.0, cases=[BranchCase(when="true", then=[])])
