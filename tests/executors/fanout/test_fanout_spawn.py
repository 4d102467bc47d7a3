"""`spawn` / `join`: threads that see only what they are passed, nesting, policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ValidationFailed

pytestmark = pytest.mark.anyio


def spawn(**fields: Any) -> dict[str, Any]:
    return {"id": "sp", "kind": "spawn", **fields}


def join(**fields: Any) -> dict[str, Any]:
    return {"id": "j", "kind": "join", "of": "sp", **fields}


async def test_children_see_only_what_is_passed_and_return_in_declared_order(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({
        "alpha": kit.Reply("A done", 0.15), "beta": kit.Reply("B done", 0.01),
        "gamma": kit.Reply("C done", 0.08), "Resume": kit.Reply("final")}))
    r = await kit.run(kit.doc(
        [spawn(messages=["alpha", "beta", "gamma"], context="Topic: {{ inputs.topic }}"),
         join(reducer="concat"),
         {"id": "resume", "kind": "llm",
          "prompt": "Resume. Topic: {{ inputs.topic }}\n{% for m in steps.j.output %}"
                    "- {{ m }}\n{% endfor %}"}],
        inputs={"topic": {"type": "string"}}), {"topic": "tides"}, fake=fake)
    assert r.result.ok, r.result.error
    assert r.step("j").output == ["A done", "B done", "C done"]  # declared, not finish, order
    assert r.step("sp").meta["finish_order"] == [1, 2, 0]
    child_prompts = sorted(q.messages[-1]["content"] for q in fake.requests
                           if "Resume" not in q.messages[-1]["content"])
    assert child_prompts == ["Topic: tides\n\nalpha", "Topic: tides\n\nbeta",
                             "Topic: tides\n\ngamma"]
    resume = next(q for q in fake.requests if "Resume" in q.messages[-1]["content"])
    assert resume.messages[-1]["content"] == \
        "Resume. Topic: tides\n- A done\n- B done\n- C done\n"
    # the trace's parent/child tree
    patched = [s for e in r.of_kind("graph_patched") for s in e.steps]
    assert {s["id"]: s["parent"] for s in patched} == {f"sp[{i}]": "sp" for i in range(3)}
    records = {s.id: s for s in r.result.steps}
    assert records["sp[1]"].parent == "sp" and records["sp[1]"].completion_tokens > 0


async def test_messages_from_an_earlier_step_or_from_the_model(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({
        "List": kit.Reply('Sure: ["x", "y"]'), r"^\n\nx$": kit.Reply("X"),
        r"^\n\ny$": kit.Reply("Y")}))
    r = await kit.run(kit.doc([spawn(messages_prompt="List two letters."),
                               join(reducer="concat")]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == ["X", "Y"]
    assert r.step("sp[messages]").output == 'Sure: ["x", "y"]'
    r = await kit.run(kit.doc([
        {"id": "parts", "kind": "tool", "tool": "extract",
         "args": {"text": "p q", "pattern": r"\w", "all": True}},
        spawn(messages="${steps.parts.output}", prompt="say {{ message }} #{{ index }}"),
        join(reducer="concat")]), fake=kit.FakeBackend(kit.by_pattern(
            {r"say (\w) #(\d)": kit.Reply("ok")})))
    assert r.result.output == ["ok", "ok"]


async def test_a_child_failure_is_a_marker_that_the_policy_handles(kit: Any) -> None:
    script = kit.by_pattern({"m1": kit.Reply("boom", fail=True), "m": kit.Reply("fine")})
    steps = [spawn(messages=["m0", "m1", "m2", "m3"], retry={"max_attempts": 1})]

    ignore = await kit.run(kit.doc([*steps, join()]), fake=kit.FakeBackend(script))
    assert ignore.result.ok, ignore.result.error
    assert ignore.result.output == ["fine", "fine", "fine"]
    marker = ignore.step("sp").output[1]
    assert marker["status"] == "failed" and marker["child"] == "sp[1]"
    assert "scripted failure" in marker["error"]
    assert ignore.step("j").meta["failed"][0]["child"] == "sp[1]"

    strict = await kit.run(kit.doc([*steps, join(policy="require_all")]),
                           fake=kit.FakeBackend(script))
    assert not strict.result.ok
    error = strict.failed("j").error
    assert "requires every child of 'sp'; 1 of 4 failed: sp[1]" in error
    assert json.loads(strict.failed("j").raw)["kept"] == {"0": "fine", "2": "fine",
                                                           "3": "fine"}

    quorum = await kit.run(kit.doc([*steps, join(policy="min_successes", min_successes=4)]),
                           fake=kit.FakeBackend(script))
    assert "3 of 4 children of 'sp' succeeded, 4 needed" in quorum.failed("j").error

    alone = await kit.run(kit.doc(steps), fake=kit.FakeBackend(script))
    assert "1 of 4 children failed (no join handles failures)" in alone.failed("sp").error


async def test_every_child_failing_is_a_clear_recorded_error(kit: Any) -> None:
    r = await kit.run(kit.doc([spawn(messages=["a", "b"], retry={"max_attempts": 1}), join()]),
                      fake=kit.FakeBackend(kit.by_pattern({"": kit.Reply("x", fail=True)})))
    assert not r.result.ok
    assert "every child of 'sp' failed (2 of 2)" in r.failed("j").error
    assert r.result.error is not None and "'j'" in r.result.error


async def test_a_child_that_times_out_returns_an_error_marker(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"slow": kit.Reply("late words", 5.0),
                                           "fast": kit.Reply("quick")}))
    r = await kit.run(kit.doc([spawn(messages=["fast", "slow"], child_timeout_s=0.1,
                                     retry={"max_attempts": 1}), join()]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == ["quick"]
    marker = r.step("sp").output[1]
    assert marker["status"] == "failed" and "timed out" in marker["error"]


async def test_child_and_token_budgets(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"": kit.Reply("one two three")}))
    r = await kit.run(kit.doc([spawn(messages=[f"m{i}" for i in range(6)], max_children=4),
                               join()]), fake=fake)
    assert r.result.output == ["one two three"] * 4
    out = r.step("sp").output
    assert [o["status"] for o in out[4:]] == ["not_started"] * 2
    assert "past max_children (4)" in out[4]["error"]
    assert r.step("sp").meta["not_started_past_max_children"] == 2

    r = await kit.run(kit.doc([spawn(messages=[f"m{i}" for i in range(6)], max_tokens=20,
                                     budget_tokens=60, concurrency=2), join()]), fake=fake)
    meta = r.step("sp").meta
    # a child reserves 20 + 8 (prompt estimate) and spends 8: the 6th would pass 60
    assert meta["stopped"] == "budget" and meta["started"] == 5
    assert meta["tokens"]["total_tokens"] == 40 <= meta["budget_tokens"] == 60
    assert len(r.result.output) == 5
    assert r.step("sp").output[5]["error"] == "token budget reached"


async def test_children_run_sub_workflows_that_spawn_again_down_to_max_depth(
        kit: Any, tmp_path: Path) -> None:
    (tmp_path / "thread.yaml").write_text(kit.dump({
        "name": "thread",
        "inputs": {"message": {"type": "string"}},
        "steps": [
            {"id": "think", "kind": "llm", "prompt": "think {{ inputs.message }}"},
            {"id": "deeper", "kind": "spawn", "messages": ["${steps.think.output}"],
             "workflow": "thread.yaml", "max_depth": 2, "retry": {"max_attempts": 1}},
            {"id": "back", "kind": "join", "of": "deeper", "reducer": "concat"},
        ],
        "outputs": {"answer": "${steps.think.output}", "below": "${steps.back.output}"},
    }))
    (tmp_path / "main.yaml").write_text(kit.dump(kit.doc(
        [spawn(messages=["a", "b"], workflow="thread.yaml", max_depth=2), join()])))
    wf = kit.workflow({"name": "x"}).from_yaml(tmp_path / "main.yaml")
    fake = kit.FakeBackend(lambda prompt, k: kit.Reply(prompt.replace("think ", "t.")))
    r = await kit.run(wf, fake=fake)
    assert r.result.ok, r.result.error
    # depth-1 threads spawn depth-2 threads, which are at max_depth: they go on alone
    top = r.result.output
    assert [t["answer"] for t in top] == ["t.a", "t.b"]
    assert top[0]["below"] == [{"answer": "t.t.a", "below": []}]
    nested = [e for e in r.events if e.kind == "run_started" and e.parent_run_id]
    assert len(nested) == 4  # 2 at depth 1, 2 at depth 2
    parents = {e.run_id: (e.parent_run_id, e.parent_step_id) for e in nested}
    depth1 = [rid for rid, (p, _) in parents.items() if p == r.result.run_id]
    assert sorted(parents[rid][1] for rid in depth1) == ["sp[0]", "sp[1]"]
    assert all(parents[rid][1] == "deeper[0]" for rid in parents if rid not in depth1)
    leaf = next(e for e in r.events if e.kind == "step_succeeded" and e.step_id == "deeper"
                and e.meta.get("stopped") == "max_depth")
    assert leaf.output[0]["status"] == "not_started"
    assert "past max_depth" in leaf.output[0]["error"]
    assert not [e for e in r.events if e.kind == "step_failed"]


@pytest.mark.parametrize(("step", "message"), [
    (spawn(messages=["a"], max_depth=0), "max_depth"),
    (spawn(messages=["a"], max_children=0), "max_children"),
    (spawn(), "exactly one of `messages` and `messages_prompt`"),
    (spawn(messages=["a"], inputs={"x": 1}), "`inputs` are for a child `workflow`"),
])
def test_bad_spawn_fields_are_located_errors(kit: Any, step: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        kit.workflow(kit.dump(kit.doc([step])))
    assert message in str(info.value) and info.value.problems[0].line > 0


async def test_messages_that_are_not_a_list_fail_clearly(kit: Any) -> None:
    # a literal, or a reference to an input declared a string, is refused when the
    # workflow is compiled: one whose type is not declared gives the text
    r = await kit.run(kit.doc([spawn(messages="${inputs.text}"), join()],
                              inputs={"text": {"type": "any"}}), {"text": "just text"},
                      fake=kit.FakeBackend(kit.by_pattern({})))
    assert "`messages` must be a list, got a string 'just text'" in r.failed("sp").error


async def test_a_retried_spawn_starts_fresh_children_and_cancels_the_old(kit: Any) -> None:
    fake = kit.FakeBackend(lambda prompt, k: kit.Reply("slow", 5.0) if k == 0
                           else kit.Reply("fast"))
    r = await kit.run(kit.doc([spawn(messages=["a", "b"], timeout_s=0.3,
                                     retry={"max_attempts": 2, "initial_backoff_s": 0}),
                               join()]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == ["fast", "fast"]
    assert sorted(e.step_id for e in r.cancelled()) == ["sp[0]", "sp[1]"]
    assert {s["id"] for e in r.of_kind("graph_patched") for s in e.steps} == \
        {"sp[0]", "sp[1]", "sp@2[0]", "sp@2[1]"}


async def test_first_finish_over_sub_workflow_threads_cancels_their_runs(
        kit: Any, tmp_path: Path) -> None:
    (tmp_path / "solver.yaml").write_text(kit.dump({
        "name": "solver", "inputs": {"message": {"type": "string"}},
        "steps": [{"id": "work", "kind": "llm", "prompt": "solve {{ inputs.message }}"}],
        "outputs": {"answer": "${steps.work.output}"}}))
    (tmp_path / "main.yaml").write_text(kit.dump(kit.doc(
        [spawn(messages=["slow1", "quick", "slow2"], workflow="solver.yaml"),
         join(reducer="first_finish")])))
    fake = kit.FakeBackend(kit.by_pattern({"slow": kit.Reply("s l o w", 5.0),
                                           "quick": kit.Reply("done", 0.05)}))
    wf = kit.workflow({"name": "x"}).from_yaml(tmp_path / "main.yaml")
    r = await kit.run(wf, fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == {"answer": "done"}
    assert r.result.duration_s < 2.0 and fake.cancelled == 2
    assert sorted(e.step_id for e in r.cancelled()) == ["sp[0]", "sp[2]"]
    nested_cancelled = [e for e in r.events if e.kind == "step_cancelled"
                        and e.run_id != r.result.run_id]
    assert sorted(e.step_id for e in nested_cancelled) == ["work", "work"]


def _recursive_thread(kit: Any, tmp_path: Path, max_depth: int) -> None:
    """thread.yaml: think, then spawn itself once (with ``max_depth``)."""
    (tmp_path / "thread.yaml").write_text(kit.dump({
        "name": "thread",
        "inputs": {"message": {"type": "string"}},
        "steps": [
            {"id": "think", "kind": "llm", "prompt": "think {{ inputs.message }}"},
            {"id": "deeper", "kind": "spawn", "messages": ["${steps.think.output}"],
             "workflow": "thread.yaml", "max_depth": max_depth,
             "retry": {"max_attempts": 1}},
            {"id": "back", "kind": "join", "of": "deeper", "reducer": "concat"},
        ],
        "outputs": {"below": "${steps.back.output}"},
    }))


def _nested_depths(r: Any) -> list[int]:
    """The depth of every nested run, from the run_started events' parent links."""
    parent = {e.run_id: e.parent_run_id for e in r.events if e.kind == "run_started"}

    def depth(rid: str) -> int:
        return 0 if parent[rid] is None else 1 + depth(parent[rid])

    return sorted(depth(rid) for rid in parent if parent[rid] is not None)


async def test_nested_spawns_reach_the_nesting_limit_and_stop_there(
        kit: Any, tmp_path: Path) -> None:
    from orchestrator.spec.kinds_fanout import MAX_NESTING_DEPTH

    _recursive_thread(kit, tmp_path, MAX_NESTING_DEPTH)
    (tmp_path / "main.yaml").write_text(kit.dump(kit.doc(
        [spawn(messages=["a"], workflow="thread.yaml", max_depth=MAX_NESTING_DEPTH),
         join()])))
    wf = kit.workflow({"name": "x"}).from_yaml(tmp_path / "main.yaml")
    r = await kit.run(wf, fake=kit.FakeBackend(lambda prompt, k: kit.Reply("t")))
    assert r.result.ok, r.result.error
    assert _nested_depths(r) == list(range(1, MAX_NESTING_DEPTH + 1))
    leaf = next(e for e in r.events if e.kind == "step_succeeded" and e.step_id == "deeper"
                and e.meta.get("stopped") == "max_depth")
    assert f"a spawn at depth {MAX_NESTING_DEPTH} cannot start children" in \
        leaf.output[0]["error"]
    assert not [e for e in r.events if e.kind == "step_failed"]


def test_a_spawn_max_depth_past_the_engine_limit_is_a_located_error(kit: Any) -> None:
    from orchestrator.spec.kinds_fanout import MAX_NESTING_DEPTH

    kit.workflow(kit.dump(kit.doc([spawn(messages=["a"], max_depth=MAX_NESTING_DEPTH)])))
    with pytest.raises(ValidationFailed) as info:
        kit.workflow(kit.dump(kit.doc([spawn(messages=["a"], max_depth=MAX_NESTING_DEPTH + 1)])))
    problem = info.value.problems[0]
    assert "max_depth" in problem.message and f"less than or equal to {MAX_NESTING_DEPTH}" \
        in problem.message and problem.line == 7  # the `max_depth:` line


async def test_a_sub_workflow_nested_past_the_limit_fails_with_a_recorded_error(
        kit: Any, tmp_path: Path) -> None:
    from orchestrator.spec.kinds_fanout import MAX_NESTING_DEPTH

    (tmp_path / "loop.yaml").write_text(kit.dump({
        "name": "loop", "steps": [{"id": "again", "kind": "workflow", "workflow": "loop.yaml",
                                   "retry": {"max_attempts": 1}}]}))
    wf = kit.workflow({"name": "x"}).from_yaml(tmp_path / "loop.yaml")
    r = await kit.run(wf, fake=kit.FakeBackend(kit.by_pattern({})))
    assert not r.result.ok
    assert max(_nested_depths(r)) == MAX_NESTING_DEPTH
    deepest = [e for e in r.events if e.kind == "step_failed" and "would run at nesting depth "
               f"{MAX_NESTING_DEPTH + 1}, past the limit of {MAX_NESTING_DEPTH}" in e.error]
    assert len(deepest) == MAX_NESTING_DEPTH + 1  # the deepest run's, and each caller's
    assert [e.error_type for e in deepest].count("ConfigError") == 1
    assert "the limit" in r.result.error and "Traceback" not in r.result.error


async def test_a_child_cannot_nest_deeper_than_its_ancestor_allows(
        kit: Any, tmp_path: Path) -> None:
    _recursive_thread(kit, tmp_path, 5)  # the child asks for more than the parent allows
    (tmp_path / "main.yaml").write_text(kit.dump(kit.doc(
        [spawn(messages=["a"], workflow="thread.yaml", max_depth=2), join()])))
    wf = kit.workflow({"name": "x"}).from_yaml(tmp_path / "main.yaml")
    r = await kit.run(wf, fake=kit.FakeBackend(lambda prompt, k: kit.Reply("t")))
    assert r.result.ok, r.result.error
    assert _nested_depths(r) == [1, 2]
    leaf = next(e for e in r.events if e.kind == "step_succeeded" and e.step_id == "deeper"
                and e.meta.get("stopped") == "max_depth")
    assert leaf.meta["max_depth"] == 2
    assert "its own 5 is capped by an enclosing spawn's 2" in leaf.output[0]["error"]


async def test_a_budget_too_small_for_one_child_fails_the_spawn_saying_what_it_needs(
        kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"": kit.Reply("one two three")}))
    r = await kit.run(kit.doc([spawn(messages=["m0", "m1"], max_tokens=20, budget_tokens=25),
                               join()]), fake=fake)
    assert not r.result.ok and not fake.requests
    failed = r.failed("sp")
    assert failed.error_type == "BudgetExceeded"
    # one child reserves its max_tokens (20) and its prompt estimate (8 tokens)
    assert failed.error == (
        "spawn 'sp': budget_tokens 25 is too small to start any child: one child needs about "
        "28 tokens (max_tokens 20 + about 8 of prompt); raise budget_tokens to at least 28 "
        "or lower max_tokens")
