"""The pure run state: readiness, failure propagation, branches, groups; property tests."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.runtime.state import RunState, StateError, Status


def test_step_is_ready_only_when_all_its_inputs_are() -> None:
    s = RunState()
    s.add("a")
    s.add("b")
    s.add("c", ["a", "b"])
    assert s.take_ready() == ["a", "b"]
    s.start("a")
    s.succeed("a", 1)
    assert s.take_ready() == []
    s.start("b")
    s.succeed("b", 2)
    assert s.take_ready() == ["c"]
    assert s.values == {"a": 1, "b": 2}


def test_failure_skips_dependents_transitively_with_cause() -> None:
    s = RunState()
    for sid, deps in [("a", []), ("b", ["a"]), ("c", ["b"]), ("d", [])]:
        s.add(sid, deps)
    s.take_ready()
    s.start("a")
    s.fail("a", "boom")
    assert s.status("b") is Status.SKIPPED and s.status("c") is Status.SKIPPED
    causes = {k.step_id: k.cause_step for k in s.skipped}
    assert causes == {"b": "a", "c": "b"}
    assert not s.done
    s.start("d")
    s.succeed("d", 0)
    assert s.done


def test_branch_exclusion_and_merge_after_branch() -> None:
    s = RunState()
    s.add("br")
    s.add("yes", ["br"])
    s.add("no", ["br"])
    s.add("merge", ["yes", "no"])
    s.add("only_no", ["no"])
    s.take_ready()
    s.start("br")
    s.exclude(["no"])
    s.succeed("br", {"taken": ["yes"]})
    assert s.take_ready() == ["yes"]
    assert s.status("no") is Status.SKIPPED
    assert s.status("only_no") is Status.SKIPPED  # every input was on the branch not taken
    s.start("yes")
    s.succeed("yes", "Y")
    assert s.take_ready() == ["merge"]  # one input present, the other reads as None
    assert s.values["no"] is None


def test_group_limit_releases_members_as_others_finish() -> None:
    s = RunState()
    s.add("m")
    s.take_ready()
    s.start("m")
    s.add_group("m", 2)
    for i in range(5):
        s.add(f"m[{i}]", group="m")
    s.seal_group("m")
    assert s.take_ready() == ["m[0]", "m[1]"]
    s.start("m[0]")
    s.succeed("m[0]", 0)
    assert s.take_ready() == ["m[2]"]
    for sid in ["m[1]", "m[2]"]:
        s.start(sid)
        s.succeed(sid, int(sid[2]))
    assert s.take_ready() == ["m[3]", "m[4]"]
    for sid in ["m[3]", "m[4]"]:
        s.start(sid)
        s.succeed(sid, int(sid[2]))
    assert [(g.owner, g.outputs, g.failed) for g in s.groups_done] == [("m", [0, 1, 2, 3, 4], [])]


def test_empty_group_finishes_at_once() -> None:
    s = RunState()
    s.add("m")
    s.take_ready()
    s.start("m")
    s.add_group("m", None)
    s.seal_group("m")
    assert s.groups_done[0].outputs == []


def test_impossible_transitions_raise() -> None:
    s = RunState()
    s.add("a")
    with pytest.raises(StateError):
        s.add("a")
    with pytest.raises(StateError):
        s.add("b", ["nope"])
    s.take_ready()
    s.start("a")
    s.succeed("a", 1)
    with pytest.raises(StateError):
        s.succeed("a", 2)


def test_cancel_all_and_cancel_queued_step() -> None:
    s = RunState()
    s.add("a")
    s.add("b")
    s.add("c", ["a"])
    s.take_ready()
    s.cancel("b")  # cancelled while ready, before it started
    s.start("a")
    ids = s.cancel_all()
    assert sorted(ids) == ["a", "c"]
    assert s.done


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[str, list[str], bool]]:
    n = draw(st.integers(1, 40))
    out = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, max(0, i - 1)), max_size=4, unique=True)) if i else []
        fails = draw(st.booleans()) and draw(st.integers(0, 9)) == 0
        out.append((f"s{i}", [f"s{d}" for d in deps], fails))
    return out


@settings(max_examples=200, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_random_dags_every_step_runs_once_after_its_inputs(
        dag: list[tuple[str, list[str], bool]], rnd: random.Random) -> None:
    """Property: each step runs at most once, only after all its inputs succeeded; a step
    runs iff no ancestor failed; every step ends resolved."""
    s = RunState()
    for sid, deps, _ in dag:
        s.add(sid, deps)
    fails = {sid for sid, _, f in dag if f}
    deps_of = {sid: deps for sid, deps, _ in dag}
    ran: list[str] = []
    running: list[str] = []
    while not s.done:
        running += s.take_ready()
        assert running, "not done, yet nothing is ready or running"
        sid = running.pop(rnd.randrange(len(running)))
        assert all(s.status(d) is Status.SUCCEEDED for d in deps_of[sid])
        s.start(sid)
        ran.append(sid)
        if sid in fails:
            s.fail(sid, "x")
        else:
            s.succeed(sid, sid)
    assert len(ran) == len(set(ran))

    def doomed(sid: str) -> bool:
        return any(d in fails or doomed(d) for d in deps_of[sid])

    for sid, _, _ in dag:
        assert (sid in ran) == (not doomed(sid))
        if sid not in ran:
            assert s.status(sid) is Status.SKIPPED
