"""The ``join`` executor: reduce a fan-out's children under a failure policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from executors.fanout._live import Child, LiveContext, Owner, from_entry, live, samples_used
from executors.fanout._operator import FanOut, FirstFinish, online_for
from executors.fanout._reduce import (
    Tally,
    answer_of,
    answers_of,
    apply_policy,
    no_answer_error,
    no_pass_error,
    seen_children,
)
from executors.fanout._score import Candidate, scope_of, score_all
from orchestrator.errors import StepError
from orchestrator.runtime.contracts import ExecContext, Result, Task, Usage
from orchestrator.spec.kinds_fanout import ONLINE_REDUCERS, JoinStep
from orchestrator.spec.models import ModelConfig, json_kind

FANOUT_KINDS = ("map", "spawn", "sample")


class JoinExecutor:
    """Runs ``join`` steps. The output is the reduced value:

    - ``concat``: the succeeded children's outputs, in declared order;
    - ``vote`` / ``adaptive_vote``: the most frequent answer (``extract``, then
      ``normalize``; children without an answer are dropped; ``tie_break``);
    - ``best_of_n``: the output of the child with the highest score (ties: the earlier);
    - ``first_finish``: the output of the first child to finish (and pass ``check``);
      with ``first: m`` above 1, the vote among the first ``m`` to finish (short-m@k),
      whose ``meta.winners`` lists them in declared order (the fan-out's and the join's
      record alike); ties per ``tie_break`` as in any vote (``first``: the earliest in
      declared order). The fan-out's ``finish_order`` is the order they finished.

    A ``spawn`` or ``sample`` step runs its own children and consults this join while
    they run (first-finish and adaptive vote stop them early); the join then reduces the
    fan-out's output. Over a ``map``, a join with an online reducer starts with the map,
    watches its items finish and cancels the rest itself.

    :attr:`Result.meta` holds ``reducer``, ``policy``, per-status counts, ``failed``
    children with their errors, and the reducer's details (votes and share, scores,
    winner, samples used).

    :raises StepError: when ``of`` is no fan-out, the fan-out failed, the policy refuses
        the outcome, or no answer / score was found; the message names the children.
        The succeeded children's outputs are kept in the error's raw output.
    """

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        step: JoinStep = task.step
        lctx = live(ctx, task.step_id)
        plan = lctx.scheduler.plans.get(step.of)
        if plan is None or plan.kind not in FANOUT_KINDS:
            what = "no step" if plan is None else f"a {plan.kind} step"
            raise StepError(f"join {task.step_id!r} names {step.of!r}, {what}: a join needs a "
                            "fan-out (map, spawn or sample)", step_id=task.step_id)
        usage = Usage()
        meta: dict[str, Any] = {"reducer": step.reducer, "policy": step.policy, "of": step.of}
        winner: int | None = None
        cut_short = 0  # answers stopped at max_tokens, as the fan-out's step counted them
        if plan.kind == "map":
            children, watched = await self._map_children(lctx, step, Owner.of(task))
            meta["fanout"] = watched.meta()
            usage += watched.online.usage
            if isinstance(watched.online, FirstFinish):
                winner = watched.online.winner
        else:
            outcome = (await lctx.wait_steps([step.of]))[step.of]
            if outcome.status != "succeeded":
                raise StepError(f"join {task.step_id!r}: fan-out {step.of!r} "
                                f"{outcome.status}: {outcome.error}", step_id=task.step_id)
            if not isinstance(outcome.output, list):
                raise StepError(f"join {task.step_id!r}: fan-out {step.of!r} gave "
                                f"{json_kind(outcome.output)}, not a list",
                                step_id=task.step_id)
            children = [from_entry(i, v) for i, v in enumerate(outcome.output)]
            cut_short = outcome.cut_short
        meta.update(_summary(children))
        try:
            ok = apply_policy(children, step, step.of)
            output = await self._reduce(lctx, step, Owner.of(task), children, ok, winner,
                                        usage, meta, cut_short)
        except StepError as exc:
            if exc.raw_output is None:
                exc.raw_output = json.dumps({"kept": {c.index: c.output for c in children
                                                      if c.ok}, **meta}, default=str)
            raise
        return Result(output=output, usage=usage, meta=meta)

    async def _map_children(self, ctx: LiveContext, step: JoinStep, owner: Owner
                            ) -> tuple[list[Child], FanOut]:
        """Watch a map's items (cancelling the rest at a first-finish or adaptive stop)."""
        join_id = owner.step_id
        members = [p.id for p in ctx.scheduler.plans.values() if p.group == step.of]
        online = online_for([step] if step.reducer in ONLINE_REDUCERS else [], ctx, owner,
                            can_add=False)
        watched = FanOut(ctx, join_id, len(members), None, online=online)
        await watched.run(adopted=members)
        outcome = (await ctx.wait_steps([step.of]))[step.of]
        if outcome.status != "succeeded":
            raise StepError(f"join {join_id!r}: map {step.of!r} {outcome.status}: "
                            f"{outcome.error}", step_id=join_id)
        return watched.children, watched

    async def _reduce(self, ctx: LiveContext, step: JoinStep, owner: Owner,
                      children: Sequence[Child], ok: list[Child], winner: int | None,
                      usage: Usage, meta: dict[str, Any], cut_short: int = 0) -> Any:
        join_id = owner.step_id
        if step.reducer == "concat":
            return [c.output for c in ok]
        if step.reducer == "first_finish" and not ok:
            raise no_pass_error(step, step.of, children)
        if step.reducer in ("vote", "adaptive_vote") or (
                step.reducer == "first_finish" and step.first > 1):
            if step.reducer == "first_finish":  # short-m@k: the vote of the first m
                meta["winners"] = sorted(c.index for c in ok)  # declared order
            answers, invalid = answers_of(ok, step)
            if not answers:
                raise no_answer_error(step, step.of, ok, children, cut_short)
            tally = Tally.of(answers)
            answer, top = tally.leader(step.tie_break)
            meta.update({"votes": tally.votes(), "share": round(top / tally.valid, 4),
                         "valid": tally.valid, "invalid": invalid,
                         "samples_used": samples_used(children)})
            return tally.value(answer)
        if step.reducer == "best_of_n":
            return await self._best(ctx, step, owner, children, ok, usage, meta)
        chosen = next((c for c in ok if c.index == winner), None) if winner is not None \
            else ok[0]
        if chosen is None:
            raise StepError(f"join {join_id!r}: first-finish's winner {winner} of {step.of!r} "
                            "is not among the children that succeeded", step_id=join_id)
        meta["winner"] = chosen.index
        return chosen.output

    async def _best(self, ctx: LiveContext, step: JoinStep, owner: Owner,
                    children: Sequence[Child], ok: list[Child], usage: Usage,
                    meta: dict[str, Any]) -> Any:
        assert step.scorer is not None
        join_id = owner.step_id
        if not ok:
            raise StepError(f"join {join_id!r} (best_of_n): no child of {step.of!r} gave a "
                            f"candidate to score ({seen_children(children)})", step_id=join_id)
        cands = [Candidate.of(c.index, c.output, answer_of(c, step) if step.extract else None,
                              scope_of(ctx, step.of, c.step_id))
                 for c in ok]
        scores = await score_all(ctx, owner, step.scorer, cands, "score", usage,
                                 home=(join_id, "scorer"))
        meta["scores"] = [s.to_json() for s in scores]
        scored = [s for s in scores if s.value is not None]
        if not scored:
            errors = "; ".join(f"{s.index}: {s.error or repr(s.raw)}" for s in scores[:3])
            raise StepError(f"join {join_id!r} (best_of_n): no candidate of {step.of!r} got a "
                            f"score: {errors}", step_id=join_id)
        best = max(scored, key=lambda s: (s.value, -s.index))
        meta["best"] = best.index
        return next(c.output for c in ok if c.index == best.index)

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return 0.0


def _summary(children: Sequence[Child]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for c in children:
        statuses[c.status] = statuses.get(c.status, 0) + 1
    failed = [{"index": c.index, "child": c.step_id, "status": c.status, "error": c.error}
              for c in children if c.status in ("failed", "skipped")]
    return {"children": len(children), "statuses": statuses, "failed": failed}
