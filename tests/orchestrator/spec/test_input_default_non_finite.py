"""An input's default that holds NaN or Infinity is refused at its line, as the same value
given at run time is: `default: .nan` passed validation and the run used it (a calc step
then failed on `NaN`, and no trace can record it)."""

from __future__ import annotations

import pytest

from orchestrator.errors import ValidationFailed
from orchestrator.spec.loader import load_yaml
from orchestrator.spec.models import InputSpec


@pytest.mark.parametrize(("decl", "where"), [
    ("{type: number, default: .nan}", "default is NaN"),
    ("{type: array, default: [1, .inf]}", "default[1] is Infinity"),
    ("{type: object, default: {a: {b: -.inf}}}", "default.a.b is -Infinity"),
])
def test_a_non_finite_default_is_refused_at_its_line(decl: str, where: str) -> None:
    text = ("name: n\ninputs:\n  x: " + decl + "\nsteps:\n"
            "  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}\n")
    with pytest.raises(ValidationFailed) as info:
        load_yaml("n.yaml", text=text)
    (problem,) = info.value.problems
    assert problem.format().startswith("n.yaml:3:"), problem.format()
    assert f"inputs.x.default: {where}, which JSON has no number for" in problem.message


def test_python_code_gets_the_same_words() -> None:
    with pytest.raises(ValueError, match="default is NaN, which JSON has no number for"):
        InputSpec(type="number", default=float("nan"))
    assert InputSpec(type="number", default=1.5).default == 1.5
