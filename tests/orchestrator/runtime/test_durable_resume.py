"""`resume`: which runs it continues, and what the resumed run keeps of its past."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import ConfigError
from orchestrator.runtime import _process
from orchestrator.runtime.durable import RunStillRunning, resume
from orchestrator.store import MemoryStore, StoreHook
from tests.orchestrator.runtime.cut_runs import cut_two

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _interrupted_after_a(tmp_path: Path, writer: dict[str, Any]) -> list[Any]:
    """The events of a run of `cut_runs.TWO` cut after `a`, as if written by ``writer``."""
    _, kept = await cut_two(tmp_path, "step_succeeded", "a")
    kept[0] = kept[0].model_copy(update=writer)
    return kept


async def test_resume_refuses_a_run_whose_writer_is_alive(
        tmp_path: Path, other_process: subprocess.Popen[bytes]) -> None:
    pid = other_process.pid
    writer = {"writer_host": _process.host_name(), "writer_pid": pid,
              "writer_start": f"{_process._pid_namespace()}|{_process.process_start(pid)}"}
    events = await _interrupted_after_a(tmp_path, writer)
    with pytest.raises(RunStillRunning, match=f"still running \\(process {pid} on "):
        await resume(events)

    other_process.kill()
    other_process.wait()
    result = await resume(events)  # now interrupted: it continues
    assert result.ok and result.output == {"b": 3}


BUDGET = """\
name: budget
budget: {max_tokens: 1}
models:
  default: {backend: simulated}
steps:
  - {id: a, kind: llm, prompt: "first", max_tokens: 8}
  - {id: b, kind: llm, prompt: "then {{ steps.a.output }}", max_tokens: 8}
"""


async def test_a_resumed_run_counts_the_tokens_spent_before(tmp_path: Path) -> None:
    wf_file = tmp_path / "budget.yaml"
    wf_file.write_text(BUDGET)
    store = MemoryStore()
    whole = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    steps = {s.id: s for s in whole.steps}
    assert steps["a"].status == "succeeded" and steps["b"].status != "succeeded"

    events = await store.events(whole.run_id)
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "a")
    kept = [e for e in events if e.seq <= cut]
    other = MemoryStore()
    await other.append(kept)
    resumed = await resume(kept, hooks=[StoreHook(other)])
    # the budget was spent by `a` before the interruption: `b` is refused again
    assert {s.id: s.status for s in resumed.steps}["b"] == steps["b"].status
    assert resumed.usage == whole.usage
    record = await other.read_run(whole.run_id)
    assert record.resumes == 1
    assert (record.prompt_tokens, record.completion_tokens) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens)


async def test_a_run_resumed_before_any_step_finished_counts_as_resumed(
        tmp_path: Path) -> None:
    events = await _interrupted_after_a(tmp_path, {})
    first_only = events[:1]
    store = MemoryStore()
    await store.append(first_only)
    result = await resume(first_only, hooks=[StoreHook(store)])
    assert result.ok
    assert (await store.read_run(result.run_id)).resumes == 1


async def test_resume_from_another_directory_finds_the_workflow_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub.yaml").write_text(
        "name: sub\ninputs:\n  x: {type: integer}\nsteps:\n"
        "  - {id: s, kind: tool, tool: calc, args: {expression: '${inputs.x} * 2'}}\n"
        "outputs:\n  y: ${steps.s.output}\n")
    (tmp_path / "main.yaml").write_text(
        "name: main\nsteps:\n"
        "  - {id: a, kind: tool, tool: calc, args: {expression: '1 + 2'}}\n"
        "  - {id: w, kind: workflow, workflow: sub.yaml, inputs: {x: '${steps.a.output}'}}\n"
        "outputs:\n  y: ${steps.w.output.y}\n")
    monkeypatch.chdir(tmp_path)
    store = MemoryStore()
    done = await Workflow.from_yaml("main.yaml").run(hooks=[StoreHook(store)])
    assert done.ok
    events = await store.events(done.run_id)
    assert events[0].source == str(tmp_path / "main.yaml")
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "a")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = await resume([e for e in events if e.seq <= cut])
    assert result.ok, result.error
    assert result.output == {"y": 6}


MAPPED = """\
name: mapped
steps:
  - id: m
    kind: map
    over: [1, 2, 3, 4]
    concurrency: 2
    step: {kind: tool, tool: calc, args: {expression: "${item} * 10"}}
  - {id: total, kind: tool, tool: calc, args: {expression: "${steps.m.output[3]} + 1"}}
outputs:
  m: ${steps.m.output}
  total: ${steps.total.output}
"""


async def _cut_everywhere(tmp_path: Path, text: str) -> tuple[Any, list[list[Any]]]:
    """A whole run of ``text`` and its events cut after each event before the last."""
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(text)
    store = MemoryStore()
    whole = await Workflow.from_yaml(wf_file).run(hooks=[StoreHook(store)])
    assert whole.ok, whole.error
    events = await store.events(whole.run_id)
    return whole, [events[:n] for n in range(1, len(events) - 1)]


async def _resume_cut(kept: list[Any], whole: Any) -> tuple[MemoryStore, str]:
    """Resume a run from the events ``kept`` (stored afresh) and check it ends as the
    whole run did; the store it wrote, and where the run was cut (for messages)."""
    store = MemoryStore()
    await store.append(kept)
    result = await resume(kept, hooks=[StoreHook(store)])
    where = f"cut after {kept[-1].kind} {getattr(kept[-1], 'step_id', '')}"
    assert result.ok, f"{where}: {result.error}"
    assert result.output == whole.output, where
    assert result.usage == whole.usage, where
    return store, where


async def test_a_map_cut_anywhere_resumes_without_running_an_item_twice(
        tmp_path: Path) -> None:
    whole, cuts = await _cut_everywhere(tmp_path, MAPPED)
    for kept in cuts:
        store, where = await _resume_cut(kept, whole)
        succeeded = [e.step_id for e in await store.events(whole.run_id)
                     if e.kind == "step_succeeded"]
        assert sorted(succeeded) == sorted(set(succeeded)), f"{where}: {succeeded}"


ELSEWHERE = """\
name: elsewhere
models:
  # a model that cannot run here (its options are refused): only --backend runs it
  default: {backend: openai, options: {not_an_option: 1}}
steps:
  - {id: a, kind: llm, prompt: "one", max_tokens: 4}
  - {id: b, kind: llm, prompt: "two {{ steps.a.output }}", max_tokens: 4}
"""


async def test_resume_gives_the_models_the_backend_the_run_was_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    done = await Workflow.from_yaml_text(ELSEWHERE).run(hooks=[StoreHook(store)],
                                                        backend="simulated")
    assert done.ok, done.error
    events = await store.events(done.run_id)
    assert events[0].backend == "simulated"
    cut = next(e.seq for e in events if e.kind == "step_succeeded" and e.step_id == "a")
    kept = [e for e in events if e.seq <= cut]
    other = MemoryStore()
    await other.append(kept)
    result = await resume(kept, hooks=[StoreHook(other)])
    assert result.ok and result.output == done.output, result.error
    resumed = [e for e in await other.events(done.run_id) if e.kind == "run_started"]
    assert [e.backend for e in resumed] == ["simulated", "simulated"]

    # told another backend, it takes that one (here: the model's own, whose options it
    # refuses, so the resume is refused before it records anything; a model name and a
    # server given, so that only the options are wrong)
    monkeypatch.setenv("PONDER_OPENAI_MODEL", "m")
    monkeypatch.setenv("PONDER_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # none listens
    again = MemoryStore()
    await again.append(kept)
    with pytest.raises(ConfigError) as info:
        await resume(kept, hooks=[StoreHook(again)], backend="openai")
    assert str(info.value).startswith("backend='openai': model 'default': openai backend "
                                      "options: unknown option 'not_an_option'")
    assert len(await again.events(done.run_id)) == len(kept)


SAMPLED = """\
name: sampled
models:
  default: {backend: simulated, options: {time_scale: 0, output_tokens: text}}
steps:
  - {id: s, kind: sample, prompt: "Pick a word.", n: 4, requests: separate, concurrency: 1}
  - {id: v, kind: join, of: s, reducer: concat}
outputs:
  v: ${steps.v.output}
"""


async def test_a_fanout_cut_anywhere_resumes_without_asking_a_finished_sample_again(
        tmp_path: Path) -> None:
    """A fan-out in flight runs again on resume (attempt 2, children `s@2[i]`); a child
    whose sample `s[i]` had succeeded takes its recorded output (a step_succeeded with
    `reused_from`) instead of asking the model again, so no sample is paid for twice."""
    whole, cuts = await _cut_everywhere(tmp_path, SAMPLED)
    for kept in cuts:
        store, where = await _resume_cut(kept, whole)
        events = await store.events(whole.run_id)
        asked = [e.step_id for e in events if e.kind == "step_succeeded"
                 and e.step_id.endswith("]") and "reused_from" not in e.meta]
        indices = sorted(sid[sid.index("["):] for sid in asked)
        assert indices == ["[0]", "[1]", "[2]", "[3]"], f"{where}: {asked}"
        reused = {e.step_id: e.meta["reused_from"] for e in events
                  if e.kind == "step_succeeded" and "reused_from" in e.meta}
        assert all(sid[sid.index("["):] == before[before.index("["):]
                   for sid, before in reused.items()), where
