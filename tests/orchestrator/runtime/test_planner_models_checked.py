"""A plan step's models are checked before a run only where its planner calls them
(``models_used``): a ``static`` plan writes no plan and has no joiner, so a workflow of
static plans ran on the ``openai`` backend unserved was refused for the model
``default`` it never asks (SDK and ``ponder run``); the llm steps a static plan adds are
still checked, and so are an ``llmcompiler`` plan's ``model`` and ``joiner_model``. A
resume does not check the model of a step on a branch not taken: it is not run again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executors.llm.simulated import SimulatedBackend
from orchestrator import ConfigError, Registry, Workflow
from orchestrator.runtime.durable import resume
from orchestrator.runtime.run_checks import aliases_used
from orchestrator.spec.kinds_plan import PlanStep
from orchestrator.store import StoreHook, TraceStore, open_store
from tests.orchestrator.cli.test_json_errors import ponder as invoke

pytestmark = pytest.mark.anyio

STATIC = "examples/planners/static.yaml"
NAMELESS = "no model name to send to the server for model"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PONDER_OPENAI_MODEL", "PONDER_OPENAI_BASE_URL", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _flow(tmp_path: Path, text: str) -> Workflow:
    file = tmp_path / "flow.yaml"
    file.write_text(text)
    return Workflow.from_yaml(file)


async def test_a_static_plan_runs_on_openai_unserved(trace_store: TraceStore) -> None:
    # no model is served: a step that asked one would fail (the backend refuses to start)
    result = await Workflow.from_yaml(STATIC).run(backend="openai",
                                                  hooks=[StoreHook(trace_store)])
    assert result.ok, result.error
    assert result.output == {"density": 19949}


def test_ponder_run_of_a_static_plan_on_openai_is_not_refused() -> None:
    result = invoke("run", STATIC, "--backend", "openai", "--json", "--db", "memory://")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert '"density": 19949' in result.stdout


STATIC_ASKS = """\
name: t
models:
  default: {backend: simulated}
  big: {backend: openai}
steps:
  - id: p
    kind: plan
    planner: static
    goal: g
    options:
      steps:
        - {id: a, kind: llm, model: big, prompt: hi}
"""


async def test_the_llm_steps_of_a_static_plan_are_still_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await _flow(tmp_path, STATIC_ASKS).run()
    assert f"{NAMELESS} 'big'" in str(caught.value)
    assert "'default'" not in str(caught.value)  # the plan step's own model is not asked


COMPILER = """\
name: t
models:
  default: {{backend: openai, model: m, base_url: 'http://127.0.0.1:9/v1'}}
  big: {{backend: openai, base_url: 'http://127.0.0.1:9/v1'}}
tools:
  lookup: "tools:lookup"
steps:
  - {{id: p, kind: plan, planner: {planner}, goal: g, tools: [lookup], {models}}}
"""


@pytest.mark.parametrize(("planner", "models"), [
    ("llmcompiler", "model: big"),
    ("llmcompiler", "joiner_model: big"),
    ("agot", "model: big"),
])
async def test_a_model_a_planner_calls_is_refused(tmp_path: Path, planner: str,
                                                  models: str) -> None:
    text = COMPILER.format(planner=planner, models=models)
    if planner == "agot":
        text = text.replace(" tools: [lookup],", "")
    with pytest.raises(ConfigError) as caught:
        await _flow(tmp_path, text).run()
    assert str(caught.value).startswith(f"{NAMELESS} 'big': ")


def test_a_planner_that_does_not_say_counts_both_models() -> None:
    step = PlanStep(id="p", kind="plan", planner="no-such-planner", goal="g", model="a",
                    joiner_model="b")
    assert Registry.default().planner_models_used(step) is None
    assert aliases_used([step]) == {"a", "b"}
    static = PlanStep(id="p", kind="plan", planner="static", goal="g", model="a",
                      joiner_model="b",
                      options={"steps": [{"id": "x", "kind": "llm", "model": "c",
                                          "prompt": "hi"}]})
    assert aliases_used([static]) == {"c"}


# `pick` takes the default branch: `ask` (the unserved model's step) is skipped
BRANCHED = """\
name: t
models:
  default: {backend: simulated}
  big: {backend: openai}
steps:
  - id: pick
    kind: branch
    cases:
      - {when: "1 == 2", then: [ask]}
    default: [t]
  - {id: ask, kind: llm, model: big, prompt: hi}
  - {id: t, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: c, kind: tool, tool: calc, args: {expression: "2 + 2"}, after: [t]}
outputs:
  c: ${steps.c.output}
"""


async def _cut(tmp_path: Path, store: TraceStore, step: str) -> list[Any]:
    """A run of BRANCHED (``big`` served by the simulated engine), its trace kept up to
    ``step``'s start, as a crash leaves it, in ``store``."""
    wf = _flow(tmp_path, BRANCHED)
    wf.register_backend("openai", SimulatedBackend)
    scratch = await open_store("memory://")
    done = await wf.run(hooks=[StoreHook(scratch)])
    assert done.ok, done.error
    events = list(await scratch.events(done.run_id))
    assert any(e.kind == "step_skipped" and e.step_id == "ask" for e in events)
    cut = next(e.seq for e in events
               if e.kind == "step_started" and getattr(e, "step_id", None) == step)
    kept = [e for e in events if e.seq <= cut]
    await store.append(kept)
    return kept


async def test_resume_does_not_check_a_step_on_a_branch_not_taken(
        tmp_path: Path, trace_store: TraceStore) -> None:
    events = await _cut(tmp_path, trace_store, "c")
    result = await resume(events, hooks=[StoreHook(trace_store)])
    assert result.ok and result.output == {"c": 4}
