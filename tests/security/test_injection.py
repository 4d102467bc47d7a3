"""Template injection and code execution through data: inputs and LLM outputs stay text.

Prompt templates are compiled from the workflow file only, in Jinja2's immutable
sandbox; values (inputs, step outputs, LLM answers) are inserted, never parsed as
templates. LLM output is never eval'ed: `calc` parses arithmetic with `ast` and
refuses anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import Workflow
from orchestrator.errors import ReferenceResolutionError, ValidationFailed
from orchestrator.spec import templates

pytestmark = pytest.mark.anyio

SSTI = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ 7 * 7 }}",
    "${steps.secret.output}",
    "{% raw %}{{ x }}{% endraw %}",
]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)

    def started(self, step_id: str) -> dict[str, Any]:
        return next(e.input for e in self.events
                    if e.kind == "step_started" and e.step_id == step_id)


def simulated(responses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"default": {"backend": "simulated",
                        "options": {"time_scale": 0.0, "responses": responses or []}}}


@pytest.mark.parametrize("payload", SSTI)
async def test_an_ssti_payload_in_an_input_stays_literal_text(payload: str) -> None:
    text = yaml.safe_dump({
        "name": "ssti", "inputs": {"q": {"type": "string"}}, "models": simulated(),
        "steps": [
            {"id": "secret", "kind": "tool", "tool": "calc", "args": {"expression": "6 * 7"}},
            {"id": "ask", "kind": "llm", "prompt": "Question: {{ inputs.q }}",
             "system": "Also ${inputs.q}", "after": ["secret"]},
        ]})
    rec = Recorder()
    result = await Workflow.from_yaml_text(text).run({"q": payload}, hooks=[rec])
    assert result.ok, result.error
    rendered = rec.started("ask")
    assert rendered["prompt"] == f"Question: {payload}"
    assert rendered["system"] == f"Also {payload}"


async def test_llm_output_with_template_syntax_stays_text_downstream() -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }} ${inputs.q}"
    text = yaml.safe_dump({
        "name": "chain", "inputs": {"q": {"type": "string"}},
        "models": simulated([{"match": "^first", "output": evil}]),
        "steps": [
            {"id": "a", "kind": "llm", "prompt": "first {{ inputs.q }}"},
            {"id": "b", "kind": "llm", "prompt": "Previous: {{ steps.a.output }}"},
            {"id": "c", "kind": "tool", "tool": "extract",
             "args": {"text": "${steps.a.output}", "pattern": ".*"}},
        ]})
    rec = Recorder()
    result = await Workflow.from_yaml_text(text).run({"q": "hi"}, hooks=[rec])
    assert result.ok, result.error
    assert rec.started("b")["prompt"] == f"Previous: {evil}"
    assert rec.started("c")["args"]["text"] == evil


@pytest.mark.parametrize("source", [
    "{{ steps.__class__ }}", "{{ steps._v }}", "{{ inputs.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ lipsum.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}", "{{ inputs.update({'q': 1}) }}",
    "{{ '{0.__class__}'.format(inputs) }}", "{{ inputs.q.__len__() }}",
])
async def test_a_template_in_the_workflow_file_cannot_reach_python_objects(source: str) -> None:
    text = yaml.safe_dump({"name": "t", "inputs": {"q": {"type": "string"}},
                           "models": simulated(),
                           "steps": [{"id": "a", "kind": "llm", "prompt": source}]})
    try:
        result = await Workflow.from_yaml_text(text).run({"q": "x"})
    except ValidationFailed as exc:  # refused before running: not a step or an input
        assert "unknown" in str(exc)
        return
    assert result.status == "failed"
    assert "template" in (result.steps[0].error or "")  # the sandbox refused it


def test_the_sandbox_is_the_immutable_one() -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    assert isinstance(templates.environment(), ImmutableSandboxedEnvironment)
    with pytest.raises(ReferenceResolutionError):
        templates.render("{{ x.append(1) }}", {"x": []})


EVIL_EXPRESSIONS = [
    "__import__('os').system('touch {marker}')",
    "open('{marker}', 'w').write('x')",
    "eval(\"open('{marker}', 'w')\")",
    "(lambda: __import__('os'))()",
    "().__class__.__bases__[0].__subclasses__()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "exec('import os')",
    "9 ** 9 ** 9",
    "1; __import__('os')",
]


@pytest.mark.parametrize("expression", EVIL_EXPRESSIONS)
async def test_llm_output_fed_to_calc_is_never_executed(expression: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    answer = expression.format(marker=marker)
    text = yaml.safe_dump({
        "name": "calc_from_llm", "models": simulated([{"match": "expression", "output": answer}]),
        "steps": [
            {"id": "plan", "kind": "llm", "prompt": "Write an expression"},
            {"id": "compute", "kind": "tool", "tool": "calc",
             "args": {"expression": "${steps.plan.output}"}},
        ]})
    rec = Recorder()
    result = await Workflow.from_yaml_text(text).run(hooks=[rec])
    assert result.status == "failed"
    failed = next(e for e in rec.events if e.kind == "step_failed")
    assert failed.step_id == "compute" and failed.error_type == "ToolError"
    assert "calc" in failed.error
    assert not marker.exists()
