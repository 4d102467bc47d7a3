"""A join left with no child to reduce says why the children gave nothing: besides their
statuses, the reason of the first (max_depth, a budget, a failure). It said only
``(not_started 1)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executors.fanout._live import Child
from executors.fanout._reduce import no_answer_error, no_pass_error, seen_children
from orchestrator.spec.kinds_fanout import JoinStep

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("reducer", ["vote", "best_of_n", "first_finish"])
async def test_a_join_of_a_spawn_at_max_depth_says_why_nothing_started(
        kit: Any, tmp_path: Path, reducer: str) -> None:
    join: dict[str, Any] = {"id": "back", "kind": "join", "of": "deeper", "reducer": reducer}
    if reducer == "best_of_n":
        join["scorer"] = {"tool": "calc", "args": {"expression": "1"}}
    (tmp_path / "thread.yaml").write_text(kit.dump({
        "name": "thread",
        "inputs": {"message": {"type": "string"}},
        "steps": [
            {"id": "think", "kind": "llm", "prompt": "think {{ inputs.message }}"},
            {"id": "deeper", "kind": "spawn", "messages": ["${steps.think.output}"],
             "workflow": "thread.yaml", "max_depth": 2, "retry": {"max_attempts": 1}},
            join,
        ],
        "outputs": {"answer": "${steps.back.output}"},
    }))
    (tmp_path / "main.yaml").write_text(kit.dump(kit.doc([
        {"id": "sp", "kind": "spawn", "messages": ["a"], "workflow": "thread.yaml",
         "max_depth": 2, "retry": {"max_attempts": 1}}])))
    wf = kit.workflow({"name": "x"}).from_yaml(tmp_path / "main.yaml")
    fake = kit.FakeBackend(lambda prompt, k: kit.Reply(prompt.replace("think ", "t.")))
    r = await kit.run(wf, fake=fake)
    assert not r.result.ok
    # the depth-2 thread's spawn is at max_depth: its join has nothing to reduce, and the
    # error the top run sees (through both threads) ends with why
    error = r.failed("sp[0]").error
    assert error.endswith("not_started 1; child 0: past max_depth: a spawn at depth 2 "
                          "cannot start children (max_depth 2)"
                          + ("" if reducer == "first_finish" else ")")), error


def _join(reducer: str, **fields: Any) -> JoinStep:
    return JoinStep.model_validate({"id": "j", "kind": "join", "of": "s", "reducer": reducer,
                                    **fields})


BUDGET = [Child(0, "s[0]", "cancelled", error="cancelled: budget"),
          Child(1, None, "not_started", error="token budget reached")]


def test_the_first_reason_follows_the_statuses() -> None:
    assert seen_children(BUDGET) == ("cancelled 1, not_started 1; child s[0]: cancelled: "
                                     "budget")
    assert seen_children([]) == "no children"
    assert seen_children([Child(0, None, "not_started")]) == "not_started 1"


def test_a_vote_and_a_first_finish_with_nothing_to_reduce_say_why() -> None:
    assert str(no_answer_error(_join("vote"), "s", [], BUDGET)) == (
        "join 'j' (vote): no child of 's' gave a message to vote on (cancelled 1, "
        "not_started 1; child s[0]: cancelled: budget)")
    assert str(no_pass_error(_join("first_finish"), "s", BUDGET)) == (
        "join 'j': no child of 's' finished: of its 2 children, cancelled 1, not_started 1; "
        "child s[0]: cancelled: budget")
