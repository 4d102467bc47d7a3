"""The ``spawn`` executor: one child thread per message (Adaptive Parallel Reasoning)."""

from __future__ import annotations

import json
import re
from typing import Any

from executors.fanout._call import SampleCall
from executors.fanout._live import Child, Owner, joins_of, live
from executors.fanout._operator import FanOut, Slot, online_for
from executors.fanout._reduce import as_text
from orchestrator.errors import StepError
from orchestrator.runtime.contracts import ExecContext, Result, Task, approx_tokens
from orchestrator.spec.kinds_fanout import SpawnStep
from orchestrator.spec.models import ModelConfig, WorkflowStep, json_kind, shown_json

_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
#: what may follow a JSON list of messages on its line
_ENDS_LINE_RE = re.compile(r"[ \t]*\.?[ \t]*(?:`{3}[ \t]*)?(?:\r?\n|$)")


class SpawnExecutor:
    """Runs ``spawn`` steps.

    The messages come from ``messages`` (resolved) or from one LLM call on
    ``messages_prompt`` (a JSON list in the reply, else one message per line), which runs
    as the child ``ID[messages]``. Child ``ID[i]`` gets message ``i``: an LLM call on
    ``prompt`` rendered with ``message``, ``context``, ``index`` and ``depth``, or the
    sub-workflow ``workflow`` with ``inputs`` resolved against the same names. Its return
    message is its output.

    The output is the return messages in the order of the messages; children that did
    not succeed are error markers, and messages past ``max_children`` are markers with
    status ``not_started``. A spawn in a run nested ``max_depth`` deep (``ctx.depth``)
    starts no child: every message is a ``not_started`` marker, and the thread goes on
    alone. Its ``max_depth`` is the smaller of its own and the one it inherits
    (``ctx.spawn_depth_limit``, the enclosing spawns'); its sub-workflow children inherit
    that, so a descendant cannot nest deeper than its ancestor allows. Without a join
    naming this step, a failed child fails it.
    :attr:`Result.meta` records the fan-out (see :meth:`FanOut.meta`) and ``depth``.

    :raises StepError: for messages that are not a list, a failed messages call, or
        (without a join) a failed child.
    :raises BudgetExceeded: when ``budget_tokens`` is too small for even one child.
    """

    async def execute(self, task: Task, ctx: ExecContext) -> Result:
        step: SpawnStep = task.step
        lctx = live(ctx, task.step_id)
        depth = ctx.depth
        inherited = getattr(ctx, "spawn_depth_limit", step.max_depth)
        max_depth = min(step.max_depth, inherited)
        if depth >= max_depth:
            return self._too_deep(task, depth, max_depth, inherited)
        limit_child = getattr(ctx, "limit_spawn_depth", None)
        owner = Owner.of(task)
        messages = await self._messages(task, lctx, owner)
        context = task.inputs.get("context") or ""
        take = min(len(messages), step.max_children)

        def make_slot(start: int, count: int) -> Slot:
            message = messages[start]
            child: Any
            if step.workflow is not None:
                child = WorkflowStep(id="child", workflow=step.workflow, inputs=step.inputs,
                                     timeout_s=step.child_timeout_s, retry=step.retry)
                reserve = 0
                if limit_child is not None:  # its spawns go no deeper than this one may
                    limit_child(owner.child(start), max_depth)
            else:
                child = SampleCall(id="child", prompt=step.prompt, system=step.system,
                                   model=step.model, n=1, max_tokens=step.max_tokens,
                                   temperature=step.temperature, top_p=step.top_p,
                                   stop=step.stop,
                                   timeout_s=step.child_timeout_s, retry=step.retry)
                reserve = step.max_tokens + approx_tokens(
                    step.prompt + (step.system or "") + context + as_text(message))
            child = child.model_copy(update={"id": owner.child(start)})
            if isinstance(child, SampleCall):  # its prompt and system are the spawn's
                child.written_in(task.step_id)
            return Slot(start, 1, child,
                        {"message": message, "context": context, "index": start,
                         "depth": depth + 1}, reserve)

        joins = joins_of(lctx, task.step_id)
        online = online_for(joins, lctx, owner)
        fan = FanOut(lctx, task.step_id, take, make_slot, online=online,
                     concurrency=step.concurrency, budget_tokens=step.budget_tokens,
                     reason=f"spawn {take} children")
        await fan.run()
        too_small = fan.budget_error(f"spawn {task.step_id!r}", step.max_tokens)
        if too_small is not None:
            raise too_small
        dropped = [Child(i, None, "not_started", error=f"past max_children "
                         f"({step.max_children})") for i in range(take, len(messages))]
        children = fan.children + dropped
        output = [c.entry() for c in children]
        meta = {**fan.meta(), "depth": depth + 1, "max_depth": max_depth,
                "messages": len(messages)}
        if dropped:
            meta["not_started_past_max_children"] = len(dropped)
        failed = fan.failures()
        if failed and not joins:
            raise StepError(
                f"spawn {task.step_id!r}: {len(failed)} of {len(children)} children failed "
                f"(no join handles failures): " + "; ".join(
                    f"{c.step_id}: {c.error}" for c in failed[:3]),
                step_id=task.step_id, raw_output=json.dumps(output, default=str))
        return Result(output=output, usage=online.usage, meta=meta)

    @staticmethod
    def _too_deep(task: Task, depth: int, max_depth: int, inherited: int) -> Result:
        """At ``max_depth`` a thread solves alone: no child starts (each message is a
        ``not_started`` marker; a model is not even asked for messages)."""
        step: SpawnStep = task.step
        messages = task.inputs.get("messages")
        count = len(messages) if isinstance(messages, list) else 0
        why = (f"past max_depth: a spawn at depth {depth} cannot start children "
               f"(max_depth {max_depth}")
        if max_depth < step.max_depth:
            why += f"; its own {step.max_depth} is capped by an enclosing spawn's {inherited}"
        why += ")"
        output = [Child(i, None, "not_started", error=why).entry() for i in range(count)]
        return Result(output=output, meta={"children": count, "started": 0, "depth": depth + 1,
                                           "max_depth": max_depth, "stopped": "max_depth",
                                           "reason": why})

    async def _messages(self, task: Task, ctx: Any, owner: Owner) -> list[Any]:
        step: SpawnStep = task.step
        if step.messages_prompt is None:
            messages = task.inputs.get("messages")
            if not isinstance(messages, list):
                raise StepError(f"spawn {task.step_id!r}: `messages` must be a list, got "
                                f"{json_kind(messages)} {shown_json(messages)}",
                                step_id=task.step_id)
            return messages
        sid = owner.child("messages")
        planner = SampleCall(id="messages", prompt="{{ _prompt }}", model=step.model, n=1,
                             max_tokens=max(step.max_tokens, 256),
                             temperature=step.temperature, top_p=step.top_p,
                             retry=step.retry)
        await ctx.add_steps(task.step_id, [planner.model_copy(update={"id": sid})],
                            reason="spawn messages",
                            locals_={sid: {"_prompt": task.inputs["messages_prompt"]}},
                            cancellable=True)
        outcome = (await ctx.wait_steps([sid]))[sid]
        if outcome.status != "succeeded":
            raise StepError(f"spawn {task.step_id!r}: the messages call {outcome.status}: "
                            f"{outcome.error}", step_id=task.step_id)
        return parse_messages(str(outcome.output))

    def estimate_s(self, step: Any, ctx_model: ModelConfig | None) -> float:
        return float(getattr(step, "max_tokens", 256)) * 0.02


def parse_messages(text: str) -> list[Any]:
    """Messages an LLM wrote: a JSON list in the text, else one per non-empty line
    (bullets and numbering removed).

    The list is the text from its first ``[`` to its last ``]`` when that is one; else
    the first list that ends its line (what follows it there is blank, a period or a
    code fence's end), so a reply that writes its list and then a note with brackets in
    it (``see [1]``) gives its list, where the note's ``]`` made the whole span no JSON
    and every line of the list a message of its own. A list followed by words on its
    line (``[1] first``) is numbering, not the list.
    """
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            value = json.loads(text[start:end + 1])
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list):
            return value
        decoder = json.JSONDecoder()
        at = start
        while 0 <= at < end:
            try:
                value, stop = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, list) and _ENDS_LINE_RE.match(text, stop):
                return value
            at = text.find("[", at + 1)
    return [_BULLET_RE.sub("", line).strip() for line in text.splitlines() if line.strip()]
