"""A group's members held over its limit (a map's items past its ``concurrency``): each
member that resolved looked through the members still held (a deque's ``in``), so a map
of n items with a small limit cost n² comparisons."""

from __future__ import annotations

from orchestrator.runtime.state import RunState, Status


class _Id(str):
    """A step id that counts the times it is compared with another."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Id.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def _grouped(n: int, limit: int, ids: list[str] | None = None) -> RunState:
    s = RunState()
    s.add("m")
    s.take_ready()
    s.start("m")
    s.add_group("m", limit)
    members = ids if ids is not None else [f"m[{i}]" for i in range(n)]
    for sid in members:
        s.add(sid, group="m")
    s.seal_group("m")
    return s


def test_members_resolved_one_by_one_do_not_each_look_through_those_held() -> None:
    n = 2000
    s = _grouped(n, 1, [_Id(f"m[{i}]") for i in range(n)])
    _Id.compared = 0
    done = 0
    while ready := s.take_ready():
        for sid in ready:
            s.start(sid)
            s.succeed(sid, done)
            done += 1
    assert done == n
    assert [g.outputs for g in s.groups_done] == [list(range(n))]
    assert _Id.compared < 10 * n  # it was about n² / 2


def test_members_cancelled_while_held_are_passed_over_in_order() -> None:
    s = _grouped(7, 2)
    assert s.take_ready() == ["m[0]", "m[1]"]
    s.cancel("m[3]")  # held: never released
    s.cancel("m[5]")
    for sid in ("m[0]", "m[1]"):
        s.start(sid)
        s.succeed(sid, sid)
    assert s.take_ready() == ["m[2]", "m[4]"]
    s.start("m[2]")
    s.fail("m[2]", "boom")
    assert s.take_ready() == ["m[6]"]
    for sid in ("m[4]", "m[6]"):
        s.start(sid)
        s.succeed(sid, sid)
    assert s.take_ready() == []
    [group] = s.groups_done
    assert group.failed == ["m[2]", "m[3]", "m[5]"]
    assert s.status("m[3]") is Status.CANCELLED
    assert s.done is False  # the owner `m` is still running


def test_a_held_member_cancelled_after_the_others_finished_still_ends_the_group() -> None:
    s = _grouped(3, 1)
    assert s.take_ready() == ["m[0]"]
    s.cancel("m[1]")
    s.cancel("m[2]")
    assert s.groups_done == []
    s.start("m[0]")
    s.succeed("m[0]", 0)
    assert s.take_ready() == []
    [group] = s.groups_done
    assert (group.outputs, group.failed) == ([0, None, None], ["m[1]", "m[2]"])
