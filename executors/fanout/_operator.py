"""The fan-out operator: start children in the live graph, watch them finish one by one,
and stop early or add more as the online reducer decides, within a budget.

The loop only moves data; the decisions (which reducer, what a result means) are in
:class:`Online` and :mod:`executors.fanout._reduce`. Every child is a real step
(``cancellable``, ``handled``), so the scheduler runs it in its own pool, the trace shows
it under its parent, and stopping cancels it at the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from executors.fanout._live import Child, LiveContext, Owner, usage_dict
from executors.fanout._reduce import (
    CHECK_ERRORED,
    Tally,
    answer_of,
    answers_of,
    confident,
    decided,
    risk,
    rule_value,
    threshold,
)
from executors.fanout._score import Candidate, Score, passes, scope_of, score_all
from orchestrator.errors import BudgetExceeded
from orchestrator.runtime.contracts import Usage
from orchestrator.spec.kinds_fanout import JoinStep, Scorer


@dataclass(slots=True)
class Slot:
    """A child step an operator may start; it covers samples ``[start, start + count)``.

    :param reserve: tokens held against a budget while it runs (its ``max_tokens`` and
        an estimate of its prompt; 0 when unknown, e.g. a sub-workflow).
    """

    start: int
    count: int
    step: Any
    locals: dict[str, Any] | None
    reserve: int = 0


#: what a child never started is told, by why its fan-out stopped early
STOP_WORDS = {
    "first_finish": "a sibling finished first",
    "confident": "adaptive_vote was confident of its answer",
    "decided": "the samples left could not change adaptive_vote's answer",
    "max_n": "adaptive_vote had read max_n samples",
}


class Online:
    """An online reducer: what a finished child means while the others still run.

    The base class stops nothing and adds nothing (concat, vote, best-of-n).
    """

    #: why the operator stopped when :meth:`offer` said so
    reason = ""
    #: status given to children that finish after the stop
    late_status = "succeeded"
    #: why children it never asked for were not started
    unneeded = "not started"

    def __init__(self) -> None:
        #: tokens of direct calls it made (endpoint checks)
        self.usage = Usage()
        #: set by :meth:`more` when it asks for no more because it reached its goal
        self.settled = False

    def begin(self, total: int) -> None:
        """The fan-out has ``total`` children (called once, before any starts)."""

    def first_round(self, total: int) -> int:
        """How many children to start before the first decision."""
        return total

    async def offer(self, child: Child) -> bool:
        """A child resolved; returns True to stop (the running ones are cancelled)."""
        return False

    def more(self, children: Sequence[Child], started: int, total: int) -> int:
        """Nothing runs any more: how many more children to start (0: done)."""
        return 0

    def finish(self, children: Sequence[Child], stopped: str | None) -> None:
        """The fan-out is over (``stopped``: why it stopped early, if it did); the
        reducer may still mark children (see :meth:`AdaptiveVote.finish`)."""

    def meta(self) -> dict[str, Any]:
        return {}


class FirstFinish(Online):
    """Stop at the first child that succeeds (and passes the join's ``check``), or at the
    ``first`` such children (short-m@k: the join then votes among them)."""

    reason = "first_finish"
    late_status = "late"

    def __init__(self, join: JoinStep, ctx: LiveContext, owner: Owner) -> None:
        super().__init__()
        self.join = join
        self.ctx = ctx
        self.owner = owner
        self.winner: int | None = None
        #: the children accepted (``first`` of them at most), in finish order; the
        #: record lists them in declared order, as the join does (see :meth:`meta`)
        self.winners: list[int] = []
        self.checks: list[Score] = []

    async def offer(self, child: Child) -> bool:
        if not child.ok:
            return False
        check = self.join.check
        if check is not None:
            # without `extract`, a structured output is its own answer (as a vote reads it)
            answer = (answer_of(child, self.join)
                      if self.join.extract or isinstance(child.output, str) else None)
            cand = Candidate.of(child.index, child.output, answer,
                                scope_of(self.ctx, self.join.of, child.step_id))
            [score] = await score_all(self.ctx, self.owner, check, [cand], "check",
                                      self.usage, numeric=check.threshold is not None,
                                      home=(self.join.id, "check"))
            self.checks.append(score)
            if not passes(score, check):
                child.status = "rejected"
                child.error = (f"{CHECK_ERRORED}{score.error}" if score.failed else
                               "failed the check" + (f": {score.error}" if score.error else
                                                     f" ({_check_said(check, score.raw)})"))
                return False
        if self.winner is None:
            self.winner = child.index
        self.winners.append(child.index)
        return len(self.winners) >= self.join.first

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"winner": self.winner}
        if self.join.first > 1:
            # declared order, as the join lists them: it has only the fan-out's output, in
            # declared order, after a resume; `finish_order` says in which they finished
            out["winners"] = sorted(self.winners)
        if self.checks:
            out["checks"] = [s.to_json() for s in self.checks]
        return out


class AdaptiveVote(Online):
    """Start ``max(batch, min_n)`` children, then ``batch`` more at a time until the join's
    stopping rule (``stop_rule``: the Beta criterion, the leading share or the predictive
    risk, see :func:`~executors.fanout._reduce.confident`) is met, or the samples left up
    to ``max_n`` could not change the winner (:func:`~executors.fanout._reduce.decided`),
    or ``max_n`` is reached (over a map, whose items all start, the items past the first
    ``max_n`` are then cancelled or, finished, ``late``: not voted).

    The rule reads the samples **in the order they were asked for**, never in the order
    they finish: it is decided on the longest run of children ``0..k-1`` that have all
    finished. Samples that finish first are the short ones, and short answers are more
    often of one kind (a guess): a rule fed in finish order would stop on them and cancel
    the longer ones still running, a vote biased towards what is quick to write. Children
    past ``k`` that had finished when the rule stopped are therefore not voted (status
    ``late``): the vote counts exactly the samples the rule was met on.
    """

    reason = "confident"

    def __init__(self, join: JoinStep, can_add: bool = True) -> None:
        super().__init__()
        self.join = join
        self.can_add = can_add
        #: the children resolved so far, by index, and the length of the run of them
        #: from index 0 (what the rule reads)
        self.resolved: dict[int, Child] = {}
        self.prefix = 0
        self.seen: list[Child] = []
        self.rounds = 0
        self.horizon = join.max_n
        self.total = 0
        self.value: float | None = None

    def cap(self, total: int) -> int:
        return min(total, self.join.max_n)

    @property
    def unneeded(self) -> str:  # type: ignore[override]
        return f"past max_n ({self.join.max_n})"

    def begin(self, total: int) -> None:
        self.total = total
        self.horizon = self.cap(total)

    def first_round(self, total: int) -> int:
        if not self.can_add:
            return total
        self.rounds = 1
        return min(self.cap(total), max(self.join.batch, self.join.min_n))

    async def offer(self, child: Child) -> bool:
        # stopping inside a round (or, over a map, at any time) cancels what is left of it
        self.resolved[child.index] = child
        if child.index != self.prefix:
            return False  # an earlier sample still runs: nothing new in order
        while self.prefix in self.resolved:
            self.seen.append(self.resolved[self.prefix])
            self.prefix += 1
        if self._should_stop():
            return True
        if not self.can_add and self.horizon < self.total and self.prefix >= self.horizon:
            # over a map, whose items it does not start: the vote is over max_n of them
            # whatever the rule says, and the items past them are not voted (`late`)
            self.reason = "max_n"
            return True
        return False

    def more(self, children: Sequence[Child], started: int, total: int) -> int:
        if self._should_stop():
            self.settled = True
            return 0
        self.rounds += 1
        return max(0, min(self.join.batch, self.cap(total) - started))

    def finish(self, children: Sequence[Child], stopped: str | None) -> None:
        """When the rule stopped the fan-out, the children past the samples it was met on
        that finished anyway are ``late``: the vote counts the samples in order only."""
        if stopped not in ("confident", "decided", "max_n"):
            return
        for child in children[self.prefix:]:
            if child.ok:
                child.status = "late"
                child.error = (f"not voted: adaptive_vote stopped ({stopped}) on samples "
                               f"0-{self.prefix - 1}, read in the order they were asked "
                               "for, before this one's turn")

    def _should_stop(self) -> bool:
        answers, _ = answers_of(self.seen, self.join)
        if not answers:
            return False
        tally = Tally.of(answers)
        remaining = max(0, self.horizon - len(self.seen))
        self.value = rule_value(tally, self.join, remaining)
        if confident(tally, self.join, remaining):
            self.reason = "confident"
            return True
        if tally.valid >= self.join.min_n and decided(tally, remaining):
            self.reason = "decided"  # a vote over every sample would say the same
            return True
        return False

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rounds": self.rounds, "stop_rule": self.join.stop_rule,
                               "decided_on": self.prefix}
        if self.join.stop_rule == "predictive":
            out["risk"] = risk(self.join)
        else:
            out["confidence"] = threshold(self.join)
        if self.value is not None:
            out["stop_value"] = round(self.value, 4)
        return out


def online_for(joins: Sequence[JoinStep], ctx: LiveContext, owner: Owner,
               can_add: bool = True) -> Online:
    """The online reducer of the first join that acts while children run, else a no-op."""
    for join in joins:
        if join.reducer == "first_finish":
            return FirstFinish(join, ctx, owner)
        if join.reducer == "adaptive_vote":
            return AdaptiveVote(join, can_add)
    return Online()


class FanOut:
    """Runs one fan-out's children: start, watch, stop, add, within a budget.

    :param make_slot: ``(start, count) -> Slot``: the child step covering those samples.
    :param per_slot: samples per child step (``n`` of one shared request, or 1).
    :param concurrency: child steps running at once (None: no limit of its own).
    :param budget_tokens: no child starts when the tokens spent plus those reserved by
        running children plus its own reservation would pass it; when the spent tokens
        reach it, running children are cancelled.
    """

    def __init__(self, ctx: LiveContext, owner_id: str, total: int,
                 make_slot: Callable[[int, int], Slot] | None, *, online: Online,
                 per_slot: int = 1, concurrency: int | None = None,
                 budget_tokens: int | None = None, reason: str = "fan-out") -> None:
        self.ctx = ctx
        self.owner_id = owner_id
        self.children = [Child(i) for i in range(total)]
        self.online = online
        self._make_slot = make_slot
        self._per_slot = max(1, per_slot)
        self._concurrency = concurrency
        self._budget = budget_tokens
        self._reason = reason
        self.finish_order: list[int] = []
        self.stopped: str | None = None
        self.spent = Usage()
        self.requests = 0
        self.started = 0
        self._running: dict[str, Slot] = {}
        self._reserved = 0
        #: the child the budget refused first (what one child needs, for the error)
        self.refused: Slot | None = None

    # -- the loop ---------------------------------------------------------------------
    async def run(self, adopted: Sequence[str] = ()) -> None:
        """Run until every started child resolved and nothing more is to start.

        :param adopted: children that already exist, one per sample in order (a map's
            items): they are watched, never started here.
        """
        send, recv = anyio.create_memory_object_stream[tuple[str, Any]](
            max_buffer_size=math.inf)

        async def watch(sid: str) -> None:
            outcomes = await self.ctx.wait_steps([sid])
            send.send_nowait((sid, outcomes[sid]))

        self.online.begin(len(self.children))
        allowed = len(self.children) if adopted else self.online.first_round(len(self.children))
        try:
            async with anyio.create_task_group() as tg, send, recv:
                for i, sid in enumerate(adopted):
                    self._track(Slot(i, 1, None, None), sid)
                    tg.start_soon(watch, sid)
                self.started = len(adopted)
                while True:
                    for sid in await self._start_allowed(allowed):
                        tg.start_soon(watch, sid)
                    if not self._running:
                        if self.stopped or self.started >= len(self.children):
                            break
                        more = self.online.more(self.children, self.started, len(self.children))
                        if more <= 0:
                            if self.online.settled:
                                self.stopped = self.online.reason
                            break
                        allowed = min(len(self.children), self.started + more)
                        continue
                    sid, outcome = await recv.receive()
                    await self._resolved(self._running.pop(sid), outcome)
        finally:
            if self._running:  # we are unwinding (cancelled, timed out): the children go too
                self.ctx.cancel_steps(list(self._running))
        self.online.finish(self.children, self.stopped)
        for child in self.children:
            if child.status == "pending":
                child.status = "not_started"
                child.error = (f"not needed: {STOP_WORDS.get(self.stopped, self.stopped)}"
                               if self.stopped and self.stopped != "budget" else
                               "token budget reached" if self.stopped else
                               self.online.unneeded)

    async def _start_allowed(self, allowed: int) -> list[str]:
        assert self._make_slot is not None or self.started >= allowed
        batch: list[Slot] = []
        while not self.stopped and self.started < allowed:
            if self._concurrency and len(self._running) + len(batch) >= self._concurrency:
                break
            count = min(self._per_slot, allowed - self.started)
            slot = self._make_slot(self.started, count)  # type: ignore[misc]
            if self._budget is not None and (
                    self.spent.total + self._reserved + slot.reserve > self._budget
                    or self.spent.total >= self._budget):
                if not self._running and not batch:
                    self.stopped = "budget"  # nothing running will free any budget
                    self.refused = self.refused or slot
                break
            self._reserved += slot.reserve
            batch.append(slot)
            self.started += count
        if not batch:
            return []
        ids = await self.ctx.add_steps(
            self.owner_id, [s.step for s in batch], reason=self._reason,
            locals_={s.step.id: s.locals for s in batch if s.locals is not None},
            cancellable=True, handled=True)
        for slot, sid in zip(batch, ids, strict=True):
            self._track(slot, sid)
        return ids

    def _track(self, slot: Slot, sid: str) -> None:
        self._running[sid] = slot
        self.requests += 1
        for child in self.children[slot.start:slot.start + slot.count]:
            child.step_id, child.status = sid, "running"

    async def _resolved(self, slot: Slot, outcome: Any) -> None:
        self._reserved -= slot.reserve
        self.spent += outcome.usage
        covered = self.children[slot.start:slot.start + slot.count]
        if getattr(outcome, "over_budget", False):
            # the run's token budget was spent before it was dispatched: not started (as
            # under this step's own budget), and no child after it is added
            for child in covered:
                child.status, child.error = "not_started", outcome.error or "token budget reached"
            self.stopped = self.stopped or "budget"
            return
        self._record(covered, outcome)
        if self.stopped:
            return
        for child in covered:
            if await self.online.offer(child):
                self.stopped = self.online.reason
                break
        if not self.stopped and self._budget is not None and self.spent.total >= self._budget:
            self.stopped = "budget"
        if self.stopped and self._running:
            for sid in self._running:
                for child in self._covered(sid):
                    child.error = f"cancelled: {self.stopped}"
            self.ctx.cancel_steps(list(self._running))

    def _covered(self, sid: str) -> list[Child]:
        slot = self._running[sid]
        return self.children[slot.start:slot.start + slot.count]

    def _record(self, covered: list[Child], outcome: Any) -> None:
        outputs = [outcome.output] if len(covered) == 1 else outcome.output
        ok = outcome.status == "succeeded"
        if ok and (not isinstance(outputs, list) or len(outputs) != len(covered)):
            ok, outcome_error = False, f"expected {len(covered)} samples, got {outputs!r:.80}"
        else:
            outcome_error = outcome.error
        share = _split(outcome.usage, len(covered))
        for child, out, used in zip(covered, outputs if ok else [None] * len(covered), share,
                                    strict=True):
            child.usage = used
            if ok:
                child.output = out
                child.cut_short = getattr(outcome, "cut_short", 0) > 0
                late = self.stopped is not None and self.stopped == self.online.reason
                child.status = self.online.late_status if late else "succeeded"
                if child.status == "late":
                    child.error = f"finished after {self.stopped} had its result"
                child.rank = len(self.finish_order)
                self.finish_order.append(child.index)
            else:
                child.status = outcome.status if outcome.status != "succeeded" else "failed"
                if child.status != "cancelled" or not child.error:  # keep why we cancelled it
                    child.error = outcome_error or child.status
                if child.status == "failed":
                    child.rank = len(self.finish_order)
                    self.finish_order.append(child.index)

    # -- the record -------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """What the fan-out did and spent, for its step's ``meta`` (the trace)."""
        statuses: dict[str, int] = {}
        for c in self.children:
            statuses[c.status] = statuses.get(c.status, 0) + 1
        cancelled = Usage()
        for c in self.children:
            if c.status == "cancelled":
                cancelled += c.usage
        out: dict[str, Any] = {
            "children": len(self.children), "started": self.started,
            "requests": self.requests, "statuses": statuses,
            "finish_order": self.finish_order, "stopped": self.stopped,
            "tokens": usage_dict(self.spent), "cancelled_tokens": usage_dict(cancelled),
        }
        if self._budget is not None:
            out["budget_tokens"] = self._budget
        cut = [c.index for c in self.children if c.cut_short]
        if cut:  # answers stopped at max_tokens (a join finding no answer says so)
            out["cut_short"] = cut
        out.update(self.online.meta())
        return out

    def budget_error(self, what: str, max_tokens: int) -> BudgetExceeded | None:
        """The error of a fan-out whose ``budget_tokens`` let no child start at all (an
        empty result would pass for a success), naming the budget and what one child
        needs; None when some child started.

        :param what: the fan-out, as the message names it (``spawn 'sp'``).
        :param max_tokens: a child's completion budget (the rest of its need is prompt).
        """
        slot = self.refused
        if self.started or slot is None or self._budget is None:
            return None
        need = slot.reserve
        prompt = max(0, need - slot.count * max_tokens)
        return BudgetExceeded(
            f"{what}: budget_tokens {self._budget} is too small to start any child: one "
            f"child needs about {need} tokens (max_tokens {slot.count * max_tokens} + about "
            f"{prompt} of prompt); raise budget_tokens to at least {need} or lower max_tokens",
            step_id=self.owner_id)

    def failures(self) -> list[Child]:
        return [c for c in self.children if c.status in ("failed", "skipped")]


def _split(usage: Usage, parts: int) -> list[Usage]:
    """Share one request's tokens between the samples it produced (exact sums)."""
    if parts == 1:
        return [usage]
    return [Usage(usage.prompt_tokens * (i + 1) // parts - usage.prompt_tokens * i // parts,
                  usage.completion_tokens * (i + 1) // parts
                  - usage.completion_tokens * i // parts) for i in range(parts)]


def _check_said(check: Scorer, raw: Any) -> str:
    """What a check answered that turned a candidate down, naming who answered: the
    ``extract`` tool's ``None`` says no ``Answer: N`` was found."""
    if check.tool is not None:
        return f"the check's tool {check.tool!r} returned {raw!r}"
    return f"the check's judge answered {raw!r}"
