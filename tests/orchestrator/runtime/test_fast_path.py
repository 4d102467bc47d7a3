"""The scheduler's cheap paths keep the semantics of the plain ones: references compiled
once resolve as `resolve` does, events built without re-validation equal validated ones,
steps run eagerly yet still overlap when they wait, a run leaves no cyclic garbage, and
`RunResult.steps` is the same whether or not a hook watched the run."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from fakes import ScriptedExecutor

from orchestrator import Workflow
from orchestrator.errors import ReferenceResolutionError
from orchestrator.runtime import events as ev
from orchestrator.runtime.contracts import Result, Task
from orchestrator.runtime.engine import _FOLD_AFTER, _RunLog
from orchestrator.runtime.scheduler import Scheduler
from orchestrator.spec.refs import Scope, compile_value, resolve

pytestmark = pytest.mark.anyio

_SCOPE = Scope({"x": {"a": [1, 2]}, "s": "hi"}, {"n0": 5, "n1": {"k": "v"}, "n2": None},
               {"item": 3, "index": 0})
_VALUES: list[Any] = [
    "plain", "${steps.n0.output}", " ${ steps.n1.output.k } ", "${steps.n2.output}",
    "a ${steps.n1.output} b ${inputs.s} c ${steps.n0.output}", "${inputs.x.a[1]}",
    "${item}", "${index}", 4, None, 1.5, True, [], {},
    {"d": ["${steps.n0.output}", 2], "e": (1, 2)},
    {"s": 0.0, "deps": ["${steps.n0.output}"]},
    {"deps": ["${steps.n0.output}"], "s": 0.0, "z": [1]},
    {"a": 1, "b": "${item}", "c": 2}, {"c": {"z": [1]}},
    [["${item}"], {"q": "${inputs.x.a}"}],
    # errors: unknown step, unknown local, bad form, missing path, inside a string
    "${steps.zz.output}", "${nope}", "${steps.x}", "${inputs.x.b}", "q ${steps.zz.output}",
    {"k": ["${inputs.missing}"]},
]


def _outcome(fn: Any) -> Any:
    try:
        return "ok", fn()
    except ReferenceResolutionError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("value", _VALUES, ids=range(len(_VALUES)))
def test_compiled_references_resolve_as_resolve_does(value: Any) -> None:
    compiled = compile_value(value)
    expected = _outcome(lambda: resolve(value, _SCOPE))
    assert _outcome(lambda: compiled(_SCOPE)) == expected
    if expected[0] == "ok" and isinstance(expected[1], dict):
        assert list(compiled(_SCOPE)) == list(expected[1])  # same key order


def test_compiled_constants_are_fresh_containers() -> None:
    compiled = compile_value({"a": [1, {"b": 2}]})
    first = compiled(_SCOPE)
    first["a"].append(3)
    first["a"][1]["b"] = 9
    assert compiled(_SCOPE) == {"a": [1, {"b": 2}]}


@pytest.mark.parametrize(("cls", "fields"), [
    (ev.StepStarted, {"step_id": "a", "step_kind": "tool", "attempt": 1,
                      "input": {"tool": "t", "args": {"x": [1]}}}),
    (ev.StepSucceeded, {"step_id": "a", "attempt": 1, "output": 1}),
    (ev.StepSucceeded, {"step_id": "a", "attempt": 2, "output": {"x": [1]}, "raw": "r",
                        "usage": ev.UsageModel(prompt_tokens=3), "latency_s": 0.5,
                        "meta": {"m": 1}}),
    (ev.RunStarted, {"workflow": "w", "inputs": {"q": 1}, "spec": {"steps": []},
                     "source": None, "parent_run_id": None, "parent_step_id": None,
                     "resumed": False}),
    (ev.RunFinished, {"status": "succeeded", "output": [1], "error": None,
                      "usage": ev.UsageModel(), "duration_s": 0.25}),
])
def test_trusted_events_equal_validated_ones(cls: type[ev._Event],
                                             fields: dict[str, Any]) -> None:
    base = {"run_id": "r", "seq": 3, "ts": 12.5}
    validated = cls(**base, **fields)
    trusted = cls.trusted({**base, **fields})
    assert trusted == validated
    assert list(trusted.__dict__) == list(validated.__dict__)
    assert trusted.model_fields_set == validated.model_fields_set
    assert ev.EVENT_ADAPTER.dump_json(trusted) == ev.EVENT_ADAPTER.dump_json(validated)
    assert ev.EVENT_ADAPTER.validate_json(ev.EVENT_ADAPTER.dump_json(trusted)) == validated


def test_trusted_events_do_not_share_mutable_defaults() -> None:
    a = ev.StepSucceeded.trusted({"run_id": "r", "seq": 0, "ts": 0.0, "step_id": "a",
                                  "attempt": 1, "output": 1})
    b = ev.StepSucceeded.trusted({"run_id": "r", "seq": 1, "ts": 0.0, "step_id": "b",
                                  "attempt": 1, "output": 1})
    assert a.meta == {} and a.meta is not b.meta


def _wf(steps: list[dict[str, Any]]) -> tuple[Workflow, ScriptedExecutor]:
    import yaml

    wf = Workflow.from_yaml_text(yaml.safe_dump({"name": "t", "steps": steps}))
    fake = ScriptedExecutor()
    wf.register_executor("tool", fake)
    return wf, fake


def _tool(sid: str, after: Sequence[str] = (), **args: Any) -> dict[str, Any]:
    return {"id": sid, "kind": "tool", "tool": "calc", "args": args, "after": list(after)}


async def test_steps_that_wait_still_overlap() -> None:
    # five branches dispatched together: each waits 200 ms; eagerly run, they must still
    # run side by side (the others move to another worker when the first one waits)
    wf, fake = _wf([_tool("src"), *[_tool(f"b{i}", ["src"], ms=200) for i in range(5)],
                    _tool("join", [f"b{i}" for i in range(5)])])
    t0 = time.monotonic()
    result = await wf.run()
    assert result.ok, result.error
    assert time.monotonic() - t0 < 0.6
    branches = [c for c in fake.calls if c.step_id.startswith("b")]
    assert max(c.start for c in branches) < min(c.end for c in branches)


class _ScopedExecutor:
    """Holds task-bound things across an await: a timeout scope and an anyio lock
    (both belong to the task that took them), the way real executors do."""

    def __init__(self) -> None:
        self.lock = anyio.Lock()

    async def execute(self, task: Task, ctx: Any) -> Result:
        with anyio.fail_after(5):
            async with self.lock:
                await anyio.sleep(task.inputs["args"].get("ms", 0) / 1000)
        return Result(output=task.step_id)

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


async def test_eager_steps_keep_task_bound_scopes_and_locks() -> None:
    wf, _ = _wf([_tool("a", ms=20), _tool("b", ms=0), _tool("c", ["a", "b"], ms=10),
                 _tool("d", ["c"])])
    wf.register_executor("tool", _ScopedExecutor())
    result = await wf.run()
    assert result.ok, result.error
    assert [s.status for s in result.steps] == ["succeeded"] * 4


async def test_a_run_leaves_no_cyclic_garbage() -> None:
    wf, _ = _wf([_tool("a"), _tool("b", ["a"]), _tool("c", ["a"]), _tool("d", ["b", "c"])])
    await wf.run()  # warm caches
    gc.collect()
    saved = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = await wf.run()
        assert result.ok
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage
                if isinstance(o, Scheduler | _RunLog | ev._Event)]
    finally:
        gc.set_debug(saved)
        gc.garbage.clear()
    assert left == []


class _Odd:
    """An output that is not JSON: step inputs that carry it are converted for events."""

    def __repr__(self) -> str:
        return "<odd>"


class _OddExecutor:
    async def execute(self, task: Task, ctx: Any) -> Result:
        if task.step_id == "a":
            return Result(output={"t": (1, 2), "o": _Odd()}, meta={"k": {3, 4}})
        return Result(output=task.inputs["args"]["v"])

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


class _Hook:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.events.extend(batch)


async def test_steps_are_json_safe_with_or_without_a_hook() -> None:
    wf, _ = _wf([_tool("a"), _tool("b", v="${steps.a.output}")])
    wf.register_executor("tool", _OddExecutor())
    hook = _Hook()
    watched = await wf.run(hooks=[hook])
    alone = await wf.run()
    want_input = {"tool": "calc", "args": {"v": {"t": [1, 2], "o": "<odd>"}}}
    for result in (watched, alone):
        steps = {s.id: s for s in result.steps}
        assert steps["b"].input == want_input
        assert steps["a"].meta == {"k": [3, 4]}
    started = next(e for e in hook.events if e.kind == "step_started" and e.step_id == "b")
    assert started.input == want_input


def test_a_long_run_folds_its_events_as_they_come() -> None:
    log = _RunLog("r", {}, {}, convert=False)
    seq = 0
    for i in range(3 * _FOLD_AFTER):
        batch = []
        for cls, fields in ((ev.StepStarted, {"step_kind": "tool", "attempt": 1,
                                              "input": {"i": i}}),
                            (ev.StepSucceeded, {"attempt": 1, "output": i})):
            batch.append(cls(run_id="r", seq=seq, ts=0.0, step_id=f"s{i}", **fields))
            seq += 1
        log.record(batch)
        assert len(log.events) <= _FOLD_AFTER
    steps = log().record().steps
    assert len(steps) == 3 * _FOLD_AFTER
    assert steps[-1].output == 3 * _FOLD_AFTER - 1 and steps[-1].status == "succeeded"


async def test_cancelled_before_start_runs_nothing() -> None:
    wf, fake = _wf([_tool("a"), _tool("b", ["a"])])
    result = await wf.run(on_scheduler=lambda sched: sched.cancel())
    assert result.status == "cancelled"
    assert fake.calls == []


async def test_unwatched_runs_record_the_same_steps_as_watched_ones() -> None:
    wf, _ = _wf([_tool("a", value=1), _tool("b", ["a"], fail=True), _tool("c", ["a"]),
                 _tool("d", ["b"])])
    hook = _Hook()
    watched = await wf.run(hooks=[hook])
    alone = await wf.run()
    assert all(isinstance(e, ev._Event) for e in hook.events)

    def view(result: Any) -> list[tuple[Any, ...]]:
        return [(s.id, s.kind, s.status, s.attempts, s.output, s.error, s.input,
                 s.prompt_tokens, s.completion_tokens, s.started_at is not None,
                 s.finished_at is not None) for s in result.steps]

    assert watched.status == alone.status == "failed"
    assert view(watched) == view(alone)
    assert (watched.usage.prompt_tokens, watched.usage.completion_tokens) == \
        (alone.usage.prompt_tokens, alone.usage.completion_tokens)


class _MutatingExecutor:
    """Changes the inputs it was given after the fact (its own business)."""

    async def execute(self, task: Task, ctx: Any) -> Result:
        task.inputs["args"] = {"changed": True}
        task.inputs["extra"] = 1
        return Result(output=task.step_id)

    def estimate_s(self, step: Any, model: Any) -> float:
        return 0.0


@pytest.mark.parametrize("watched", [True, False])
async def test_recorded_inputs_are_what_the_step_was_given(watched: bool) -> None:
    wf, _ = _wf([_tool("a", x=1)])
    wf.register_executor("tool", _MutatingExecutor())
    result = await wf.run(hooks=[_Hook()] if watched else [])
    assert result.steps[0].input == {"tool": "calc", "args": {"x": 1}}


async def test_gc_is_tuned_only_while_large_workloads_run() -> None:
    before = gc.get_threshold()
    seen: dict[str, tuple[int, int, int]] = {}

    class Probe:
        async def execute(self, task: Task, ctx: Any) -> Result:
            seen[task.step_id] = gc.get_threshold()
            return Result(output=1)

        def estimate_s(self, step: Any, model: Any) -> float:
            return 0.0

    small, _ = _wf([_tool("a"), _tool("b", ["a"])])
    small.register_executor("tool", Probe())
    assert (await small.run()).ok
    assert seen["b"] == before  # a small run leaves the collector alone

    large, _ = _wf([_tool(f"s{i}") for i in range(1_000)])
    large.register_executor("tool", Probe())
    assert (await large.run()).ok
    assert seen["s999"] != before  # raised while it ran
    assert gc.get_threshold() == before  # and restored after
