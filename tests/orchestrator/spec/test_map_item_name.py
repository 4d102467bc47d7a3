"""A map's ``as:`` is a name its body reads the item by: an identifier, and not ``inputs``
or ``steps``, which would hide the run's own from the body. Such names passed
validation before; the body's templates then read something else or nothing."""

from __future__ import annotations

import pytest

from orchestrator.errors import StepDefinitionError, ValidationFailed
from orchestrator.sdk import Workflow
from orchestrator.spec.loader import load_yaml

_BODY = {"kind": "tool", "tool": "calc", "args": {"expression": "1 + 1"}}


def _yaml(name: str) -> str:
    return ("name: w\nsteps:\n  - id: m\n    kind: map\n    over: [1, 2]\n"
            f"    as: {name}\n    step:\n      kind: tool\n      tool: calc\n"
            "      args: {expression: '1 + 1'}\n")


@pytest.mark.parametrize(("name", "words"), [
    ("inputs", "`as:` 'inputs' would hide the run's own `inputs` from the body"),
    ("steps", "`as:` 'steps' would hide the run's own `steps` from the body"),
    ('"a b"', "`as:` must be a name a template can read"),
    ('""', "`as:` must be a name a template can read"),
    ("1x", "`as:` must be a name a template can read"),
])
def test_an_item_name_the_body_cannot_read_is_refused_at_its_line(
        name: str, words: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_yaml("w.yaml", text=_yaml(name))
    text = "\n".join(p.format() for p in info.value.problems)
    assert words in text and ":6:" in text, text
    assert "Value error" not in text and "(got" not in text


@pytest.mark.parametrize("name", ["item", "q", "_x", "row2", "index"])
def test_an_identifier_is_a_name_for_the_item(name: str) -> None:
    spec, _ = load_yaml("w.yaml", text=_yaml(name))
    assert spec.steps[0].item_var == name


def test_the_sdk_refuses_it_without_pydantic_words() -> None:
    with pytest.raises(StepDefinitionError) as info:
        Workflow("w").map("m", over=[1], step=_BODY, item_var="steps")
    assert str(info.value) == (
        "map step 'm': as: `as:` 'steps' would hide the run's own `steps` from the body: "
        "give the item another name (e.g. `as: item`)")
