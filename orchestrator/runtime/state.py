"""Run state: what is ready, what a result changes. Pure code, no I/O, no clock.

The scheduler asks :meth:`RunState.take_ready` for steps whose inputs all exist and
tells the state what happened (:meth:`succeed`, :meth:`fail`, :meth:`add`...). Rules:

- A step is *resolved* when its status is terminal.
- When every dependency of a step is resolved, the step becomes ready, unless a
  dependency failed, was cancelled or was skipped because of a failure: then it is
  skipped with that cause, and with the failed step the skip goes back to (its reason
  names it: ``step 'a' failed (via 'b')``). If *every* dependency was skipped by a branch not taken,
  the step is skipped the same way (a step with some inputs present runs; the
  skipped inputs read as null).
- A step excluded by a branch is skipped (not run) once its dependencies resolve.
- Group members (map items) are released at most ``limit`` at a time; the group's
  owner step finishes when all its members have.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED})


class StateError(Exception):
    """A scheduler bug: an impossible transition (never a user's mistake)."""


@dataclass(slots=True)
class StepState:
    id: str
    deps: tuple[str, ...]
    dependents: list[str] = field(default_factory=list)
    waiting: int = 0
    status: Status = Status.PENDING
    attempts: int = 0
    output: Any = None
    error: str | None = None
    cause: str | None = None  # first failed/cancelled dependency
    root: str | None = None  # the failed/cancelled step a skip goes back to (via `cause`)
    branch_skip: bool = False  # skipped because a branch did not take it
    excluded: bool = False  # a branch decided not to run it
    n_branch_skipped_deps: int = 0
    group: str | None = None


@dataclass(slots=True)
class _Group:
    members: list[str]
    limit: int | None
    running: int = 0
    #: members ready but over the limit, in the order they became ready; one resolved
    #: while held (cancelled) stays here until its turn comes, and is passed over then
    held: deque[str] = field(default_factory=deque)
    #: the members ``held`` holds that have not resolved: a deque's ``in`` and ``remove``
    #: look through it, which made each member resolved cost as much as the members held
    held_ids: set[str] = field(default_factory=set)
    unresolved: int = 0


@dataclass(slots=True)
class Skip:
    """A step the state skipped, and why."""

    step_id: str
    reason: str
    cause_step: str | None
    #: the failed or cancelled step the skip goes back to, through skipped steps (the
    #: cause itself for a step whose dependency failed); None for a branch's skip
    root_step: str | None = None


@dataclass(slots=True)
class GroupDone:
    """A group owner whose members all resolved: ``failed`` lists members that did not succeed."""

    owner: str
    outputs: list[Any]
    failed: list[str]


class RunState:
    """The status of every step of one run."""

    def __init__(self) -> None:
        self.steps: dict[str, StepState] = {}
        self._ready: deque[str] = deque()
        self._groups: dict[str, _Group] = {}
        self._unresolved = 0
        self._excluded_later: set[str] = set()
        self.skipped: list[Skip] = []
        self.groups_done: list[GroupDone] = []
        #: outputs of succeeded steps, and None for branch-skipped ones (kept incrementally)
        self.values: dict[str, Any] = {}
        #: steps skipped by a branch not taken (their value reads null)
        self.branch_skipped: set[str] = set()
        #: ids resolved since the scheduler last looked (it clears the list)
        self.resolved_log: list[str] = []

    # -- building -----------------------------------------------------------
    def add(self, step_id: str, deps: Iterable[str] = (), *, group: str | None = None) -> None:
        """Add a step. Its dependencies must already exist (the graph is built in order).

        :raises StateError: for a duplicate id or an unknown dependency.
        """
        steps = self.steps
        if step_id in steps:
            raise StateError(f"duplicate step {step_id!r}")
        deps_t = deps if type(deps) is tuple and len(deps) < 2 else tuple(dict.fromkeys(deps))
        st = StepState(step_id, deps_t, group=group)
        if self._excluded_later and step_id in self._excluded_later:
            st.excluded = True
        steps[step_id] = st
        self._unresolved += 1
        for d in deps_t:
            dep = steps.get(d)
            if dep is None:
                raise StateError(f"step {step_id!r} depends on unknown step {d!r}")
            dep.dependents.append(step_id)
            if dep.status in TERMINAL:
                self._note_resolved_dep(st, dep)
            else:
                st.waiting += 1
        if group is not None:
            g = self._groups[group]
            g.members.append(step_id)
            g.unresolved += 1
        if st.waiting == 0:
            self._on_inputs_resolved(st)

    def add_group(self, owner: str, limit: int | None) -> None:
        """Make `owner` (a running step) the owner of a group of members added next."""
        self._groups[owner] = _Group([], limit)

    def seal_group(self, owner: str) -> None:
        """No more members will be added; an empty group finishes at once."""
        g = self._groups[owner]
        if g.unresolved == 0:
            self._finish_group(owner)

    # -- queries --------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._unresolved == 0

    def status(self, step_id: str) -> Status:
        return self.steps[step_id].status

    def take_ready(self) -> list[str]:
        """Steps that became ready since the last call, in the order they did."""
        if not self._ready:
            return []
        out = [sid for sid in self._ready if self.steps[sid].status is Status.PENDING]
        self._ready.clear()
        for sid in out:
            self.steps[sid].status = Status.READY
        return out

    # -- transitions -----------------------------------------------------------
    def start(self, step_id: str) -> int:
        """Mark a ready step running; returns its attempt number."""
        st = self.steps[step_id]
        if st.status not in (Status.READY, Status.RUNNING):
            raise StateError(f"cannot start {step_id!r} in status {st.status}")
        st.status = Status.RUNNING
        st.attempts += 1
        return st.attempts

    def succeed(self, step_id: str, output: Any) -> None:
        st = self._terminal(step_id, Status.SUCCEEDED)
        st.output = output
        self.values[step_id] = output
        self._resolved(st)

    def fail(self, step_id: str, error: str) -> None:
        st = self._terminal(step_id, Status.FAILED)
        st.error = error
        self._resolved(st)

    def cancel(self, step_id: str) -> None:
        st = self._terminal(step_id, Status.CANCELLED)
        st.error = "cancelled"
        self._resolved(st)

    def exclude(self, step_ids: Iterable[str]) -> None:
        """A branch chose not to run these steps: they will be skipped, not run."""
        for sid in step_ids:
            self.steps[sid].excluded = True

    def exclude_later(self, step_ids: Iterable[str]) -> None:
        """Exclude steps as they are added (a resumed run's branch decisions)."""
        self._excluded_later = set(step_ids)

    def cancel_all(self) -> list[str]:
        """Cancel every unresolved step; returns their ids (see ``attempts`` for started)."""
        ids = []
        for s in self.steps.values():
            if s.status not in TERMINAL:
                s.status = Status.CANCELLED
                s.error = "cancelled"
                self._unresolved -= 1
                ids.append(s.id)
                self.resolved_log.append(s.id)
        self._ready.clear()
        return ids

    def preset(self, step_id: str, output: Any) -> None:
        """Mark a pending/ready step succeeded without running it (resume, replay)."""
        st = self._not_to_run(step_id)
        st.status = Status.SUCCEEDED
        st.output = output
        self.values[step_id] = output
        self._resolved(st)

    def preset_failed(self, step_id: str, error: str) -> None:
        """Mark a pending/ready step failed without running it (resume: it failed in an
        earlier execution of the run)."""
        self._not_to_run(step_id)
        self.fail(step_id, error)

    def _not_to_run(self, step_id: str) -> StepState:
        """A pending/ready step whose end an earlier execution knows, taken off the ready
        queue (see :meth:`preset`)."""
        st = self.steps[step_id]
        if st.status in TERMINAL:
            raise StateError(f"cannot preset {step_id!r} in status {st.status}")
        if st.id in self._ready:
            self._ready.remove(st.id)
        return st

    # -- internals ---------------------------------------------------------------
    def _terminal(self, step_id: str, status: Status) -> StepState:
        st = self.steps[step_id]
        if st.status in TERMINAL:
            raise StateError(f"{step_id!r} is already {st.status}")
        st.status = status
        return st

    def _resolved(self, st: StepState) -> None:
        self._unresolved -= 1
        self.resolved_log.append(st.id)
        if st.group is not None:
            self._member_resolved(st)
        succeeded = st.status is Status.SUCCEEDED
        for did in st.dependents:
            dep = self.steps[did]
            if dep.status in TERMINAL:
                continue
            if not succeeded:
                self._note_resolved_dep(dep, st)
            dep.waiting -= 1
            if dep.waiting == 0:
                self._on_inputs_resolved(dep)

    @staticmethod
    def _note_resolved_dep(st: StepState, dep: StepState) -> None:
        if dep.status is Status.SKIPPED and dep.branch_skip:
            st.n_branch_skipped_deps += 1
        elif dep.status is not Status.SUCCEEDED and st.cause is None:
            st.cause = dep.id

    def _on_inputs_resolved(self, st: StepState) -> None:
        if st.cause is not None:
            cause = self.steps[st.cause]
            root = self.steps[cause.root] if cause.root is not None else cause
            st.root = root.id
            if root is cause:
                why = "cancelled" if cause.status is Status.CANCELLED else "did not succeed"
                self._skip(st, f"dependency {cause.id!r} {why}", cause.id, branch=False)
            else:  # two hops or more: name the step that started it, not only `cause`
                why = "was cancelled" if root.status is Status.CANCELLED else "failed"
                self._skip(st, f"step {root.id!r} {why} (via {cause.id!r})", cause.id,
                           branch=False)
        elif st.excluded:
            self._skip(st, "branch not taken", None, branch=True)
        elif st.deps and st.n_branch_skipped_deps == len(st.deps):
            self._skip(st, "every input was on a branch not taken", None, branch=True)
        elif st.group is not None:
            g = self._groups[st.group]
            if g.limit is not None and g.running >= g.limit:
                g.held.append(st.id)
                g.held_ids.add(st.id)
            else:
                g.running += 1
                self._ready.append(st.id)
        else:
            self._ready.append(st.id)

    def _skip(self, st: StepState, reason: str, cause: str | None, *, branch: bool) -> None:
        st.status = Status.SKIPPED
        st.branch_skip = branch
        st.error = reason
        if branch:
            self.values[st.id] = None
            self.branch_skipped.add(st.id)
        self.skipped.append(Skip(st.id, reason, cause, st.root))
        self._resolved(st)

    def _member_resolved(self, st: StepState) -> None:
        assert st.group is not None
        g = self._groups[st.group]
        g.unresolved -= 1
        if st.id in g.held_ids:  # resolved (cancelled) before it was released
            g.held_ids.remove(st.id)
        else:
            g.running = max(0, g.running - 1)
        while g.held and (g.limit is None or g.running < g.limit):
            nxt = g.held.popleft()
            if nxt not in g.held_ids:  # resolved while held
                continue
            g.held_ids.remove(nxt)
            if self.steps[nxt].status in TERMINAL:  # cancelled while held
                continue
            g.running += 1
            self._ready.append(nxt)
        if g.unresolved == 0:
            self._finish_group(st.group)

    def _finish_group(self, owner: str) -> None:
        g = self._groups.pop(owner)
        members = [self.steps[m] for m in g.members]
        failed = [m.id for m in members if m.status is not Status.SUCCEEDED]
        self.groups_done.append(GroupDone(owner, [m.output for m in members], failed))
