"""The step builders the README's Python SDK section shows inline (`wf.map(...)`,
`wf.branch(...)`, `wf.call(...)`) run as written, together, from the clone's root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator import SpecError, Workflow
from orchestrator.errors import StepDefinitionError

ROOT = Path(__file__).resolve().parents[2]


def shown_calls() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python SDK"):readme.index("## Command line")]
    calls = {}
    for name in ("map", "branch", "call"):
        found = re.search(rf"`(wf\.{name}\(.*?\))`", section, flags=re.S)
        assert found, f"the SDK section shows wf.{name}(...)"
        calls[name] = found.group(1).replace("\n", " ")
    return calls


def test_the_shown_builders_run_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the shown path is the clone's
    wf = Workflow("builders", inputs={"topics": "array"})
    for code in shown_calls().values():
        eval(code, {"wf": wf})  # the README's own text
    wf.output(each="${steps.each.output}", legs="${steps.sub.output.total_legs}")
    result = wf.run_sync({"topics": ["tides", "eclipses"]}, backend="simulated")
    assert result.status == "succeeded", result.error
    assert len(result.output["each"]) == 2
    assert result.output["legs"] == 4 * 8 + 2 * 6  # the branch took the sub-workflow


def test_a_plan_step_goes_in_as_a_dict_and_a_bad_value_is_a_spec_error() -> None:
    wf = Workflow("plan_dict")
    wf.add({"kind": "plan", "id": "p", "goal": "What is 2 + 2?"})
    assert [s.kind for s in wf.spec.steps] == ["plan"]
    with pytest.raises(StepDefinitionError) as caught:
        wf.output(x=5)  # type: ignore[arg-type]
    assert isinstance(caught.value, SpecError) and isinstance(caught.value, ValueError)
