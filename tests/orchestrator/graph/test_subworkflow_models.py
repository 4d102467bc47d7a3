"""A sub-workflow without `models:` runs on the models of the workflow that runs it: its
steps may name the aliases its caller declares (or is given), and its `default` is the
caller's. It ran every step on the bundled model, and since an undeclared alias is
refused (11e65ec) a step naming the caller's `fast` failed to compile, a resumed run
recorded before that too. An alias neither declares is still refused at its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.graph.validate import ModelOverrides, validate_file
from orchestrator.runtime.durable import resume
from orchestrator.runtime.engine import compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.sdk import Workflow
from orchestrator.spec.models import WorkflowSpec
from orchestrator.store import MemoryStore, StoreHook

PARENT = """\
name: parent
models:
  default:
    backend: simulated
    options: {time_scale: 0, responses: [{match: "", output: "the parent's default"}]}
  fast:
    backend: simulated
    options: {time_scale: 0, responses: [{match: "", output: "the parent's fast"}]}
steps:
  - {id: call, kind: workflow, workflow: child.yaml}
outputs:
  out: ${steps.call.output}
"""

CHILD = """\
name: child
steps:
  - {id: a, kind: llm, prompt: hi, max_tokens: 8}
  - {id: b, kind: llm, prompt: hi, model: fast, max_tokens: 8}
outputs:
  a: ${steps.a.output}
  b: ${steps.b.output}
"""


def _files(tmp_path: Path, parent: str = PARENT, child: str = CHILD) -> Path:
    (tmp_path / "child.yaml").write_text(child, encoding="utf-8")
    (tmp_path / "parent.yaml").write_text(parent, encoding="utf-8")
    return tmp_path / "parent.yaml"


def test_a_child_without_models_may_name_its_callers_aliases(tmp_path: Path) -> None:
    assert validate_file(_files(tmp_path)) == []


def test_an_alias_neither_declares_is_named_at_its_line_in_the_child(tmp_path: Path) -> None:
    child = CHILD.replace("  - {id: b", "  - {id: c, kind: llm, prompt: hi, model: nope}\n"
                          "  - {id: b")
    (problem,) = validate_file(_files(tmp_path, child=child))
    assert problem.line == 10  # the parent's step that runs the child
    assert "sub-workflow 'child.yaml' has problems: child.yaml:4:36: unknown model 'nope'" \
        in problem.message


def test_a_child_alone_knows_no_caller(tmp_path: Path) -> None:
    _files(tmp_path)
    (problem,) = validate_file(tmp_path / "child.yaml")
    assert (problem.line, problem.message) == (4, "unknown model 'fast'")
    assert "as a sub-workflow the models of the workflow running it" in problem.hint


def test_a_child_with_models_of_its_own_uses_those_only(tmp_path: Path) -> None:
    child = CHILD.replace("name: child\n", "name: child\nmodels:\n  own: {backend: simulated}\n")
    (problem,) = validate_file(_files(tmp_path, child=child))
    assert "child.yaml:6:36: unknown model 'fast'" in problem.message


def test_a_grandchild_inherits_through_a_child_without_models(tmp_path: Path) -> None:
    (tmp_path / "grandchild.yaml").write_text(CHILD.replace("name: child", "name: gc"))
    child = ("name: child\nsteps:\n  - {id: g, kind: workflow, workflow: grandchild.yaml}\n"
             "outputs:\n  o: ${steps.g.output}\n")
    assert validate_file(_files(tmp_path, child=child)) == []


def test_an_alias_given_to_the_caller_is_given_to_the_child(tmp_path: Path) -> None:
    parent = ("name: parent\nsteps:\n  - {id: call, kind: workflow, workflow: child.yaml}\n"
              "  - {id: x, kind: llm, prompt: hi, model: fast}\n")
    file = _files(tmp_path, parent=parent)
    assert [p.message for p in validate_file(file, overrides=ModelOverrides(
        backend="simulated", replaced=frozenset({"fast"})))] == []


@pytest.mark.anyio
async def test_a_child_without_models_runs_on_its_callers_models(tmp_path: Path) -> None:
    result = await Workflow.from_yaml(_files(tmp_path)).run()
    assert result.ok, result.error
    assert result.output == {"out": {"a": "the parent's default", "b": "the parent's fast"}}


@pytest.mark.anyio
async def test_a_child_with_models_of_its_own_runs_on_those(tmp_path: Path) -> None:
    child = CHILD.replace("name: child\n", "name: child\nmodels:\n  default: {backend: "
                          "simulated, options: {time_scale: 0, responses: [{match: '', "
                          "output: own}]}}\n  fast: {backend: simulated, options: "
                          "{time_scale: 0, responses: [{match: '', output: own}]}}\n")
    result = await Workflow.from_yaml(_files(tmp_path, child=child)).run()
    assert result.ok, result.error
    assert result.output == {"out": {"a": "own", "b": "own"}}


OLD_PARENT = """\
name: parent
steps:
  - {id: a, kind: llm, prompt: hi, model: default, max_tokens: 8}
  - {id: call, kind: workflow, workflow: child.yaml, after: [a]}
"""


@pytest.mark.anyio
async def test_a_run_recorded_before_aliases_were_refused_resumes_into_its_child(
        tmp_path: Path) -> None:
    """The parent, without `models:`, named `fast` (run on the bundled model) and was
    killed before its child, whose file names `fast` too, started."""
    _files(tmp_path, child=CHILD.replace("model: fast", "model: default"))
    registry = Registry.default()
    spec = WorkflowSpec.model_validate(yaml.safe_load(OLD_PARENT))
    store = MemoryStore()
    result = await execute(compile_graph(spec, registry=registry, base_dir=tmp_path), {},
                           registry=registry, hooks=[StoreHook(store)], backend="simulated")
    assert result.ok, result.error
    events: list[Any] = list(await store.events(result.run_id))
    recorded = dict(events[0].spec)
    recorded["steps"] = [dict(s) for s in recorded["steps"]]
    recorded["steps"][0]["model"] = "fast"
    (tmp_path / "parent.yaml").write_text(OLD_PARENT.replace("model: default", "model: fast"))
    events[0] = events[0].model_copy(update={"spec": recorded,
                                             "source": str(tmp_path / "parent.yaml")})
    cut = next(i for i, e in enumerate(events)
               if e.kind == "step_succeeded" and e.step_id == "a")
    (tmp_path / "child.yaml").write_text(CHILD)
    again = await resume(events[:cut + 1], backend="simulated")
    assert again.ok, again.error
