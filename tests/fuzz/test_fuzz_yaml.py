"""The YAML loader and the validator on random text and on random workflow-shaped documents:
a spec or ValidationFailed (load_yaml), a list of located problems (validate_text), and
the two agree with each other."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import yaml
from fuzz.support import (
    DOCS,
    FUZZ,
    YAMLISH_TEXT,
    near_valid_docs,
    outcome,
)
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from orchestrator import Workflow
from orchestrator.errors import Problem, SpecError, ValidationFailed
from orchestrator.graph.validate import validate_text
from orchestrator.spec.loader import dump_yaml, load_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUICKSTART = (EXAMPLES / "quickstart.yaml").read_text()


def check_problems(problems: list[Problem], text: str) -> None:
    assert isinstance(problems, list)
    n_lines = text.count("\n") + 2
    for p in problems:
        assert isinstance(p, Problem) and p.message
        assert 0 <= p.line <= n_lines, (p, n_lines)
        assert p.format().startswith(p.file)


def has_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(has_non_finite(v) for v in value)
    return False


def check_text(text: str) -> None:
    kind, value = outcome(load_yaml, "fuzz.yaml", text=text, allowed=(ValidationFailed,))
    if kind == "error":
        assert value.problems, "ValidationFailed without a problem"
        check_problems(value.problems, text)
    vkind, problems = outcome(validate_text, text, "fuzz.yaml", allowed=())
    if vkind == "ok":
        check_problems(problems, text)
        if kind == "error":
            assert problems, "load_yaml failed but validate_text found nothing"
        if not problems:
            assert kind == "ok", "validate_text found nothing but load_yaml failed"
    if kind == "ok":
        spec, _ = value
        again, _ = load_yaml("again.yaml", text=dump_yaml(spec))
        assert again == spec, "dump_yaml then load_yaml changed the spec"


@FUZZ
@given(st.text(max_size=300))
@example("")
@example("name: x\nsteps: []\n")
@example("- 1\n- 2\n")
@example("name: x\nname: y\n")
@example("a: !!python/object/apply:os.system ['true']\n")
@example("<<: {name: x}\n")
@example("name: x\nsteps:\n - {id: a, kind: llm, prompt: '{{'}\n")
def test_random_text(text: str) -> None:
    check_text(text)


@FUZZ
@given(YAMLISH_TEXT)
def test_yaml_punctuation(text: str) -> None:
    check_text(text)


@settings(FUZZ, max_examples=100)
@given(DOCS)
def test_workflow_shaped_documents(doc: dict) -> None:
    check_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


@FUZZ
@given(near_valid_docs())
def test_near_valid_documents(doc: dict) -> None:
    check_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


@settings(FUZZ, max_examples=60)
@given(near_valid_docs(), st.sampled_from([{}, {"n": 0}, {"q": "{{ 7 * 7 }}", "xs": []},
                                           {"xs": "not a list"}, {"n": -1, "xs": [[1], {}]}]))
def test_valid_documents_run_to_an_end(doc: dict, inputs: dict) -> None:
    """A workflow that validates runs to `succeeded` or `failed`, whatever its inputs."""
    text = yaml.safe_dump(doc, sort_keys=False)
    assume(not validate_text(text, "run.yaml"))
    wf = Workflow.from_yaml_text(text)
    try:
        result = anyio.run(lambda: wf.run(inputs))
    except SpecError as exc:  # inputs that do not match the declarations
        assert "input" in str(exc)
        return
    assert result.status in ("succeeded", "failed"), result.status
    if result.status == "failed":
        assert result.error
    for step in result.steps:
        assert step.status in ("succeeded", "failed", "skipped"), (step.id, step.status)


@FUZZ
@given(st.data())
def test_mutated_example(data: st.DataObject) -> None:
    """Cut, duplicate or splice lines of a real example."""
    lines = QUICKSTART.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "insert", "dedent"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, data.draw(YAMLISH_TEXT) + "\n")
        else:
            lines[i] = lines[i].lstrip(" ")
        if not lines:
            break
    check_text("".join(lines))
