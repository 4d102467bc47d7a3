"""Fan-out executors: ``spawn`` / ``join`` threads and test-time scaling operators.

Design
======

**The fan-out step is the operator; the join is its policy.** A ``spawn`` or ``sample``
step starts its children itself, as real steps of the live graph
(``ctx.add_steps(..., cancellable=True, handled=True)``), and waits for them *one by
one* as they finish. Before it starts, it looks up the join that names it (in the
scheduler's plans): a ``first_finish`` join makes it stop at the first child that
succeeds (and passes the join's ``check``) and cancel the others; an ``adaptive_vote``
join makes it start ``max(batch, min_n)`` samples and add ``batch`` more until its
``stop_rule`` is met (``beta``, Adaptive-Consistency's criterion: the posterior
probability that the leader beats the runner-up reaches ``confidence``, 0.95 by default;
``share``: the leader's share reaches it; or ``predictive``: the chance that sampling
on to ``max_n`` would change the winner is at most ``risk``), until the samples left up
to ``max_n`` could not change the winner, or up to ``max_n``; the rule reads the samples
in the order they were asked for (the run of finished children from index 0), not in
finish order, which would bias the vote towards quick answers. Budgets
(``budget_tokens``, ``max_children``, ``concurrency``) are enforced in the same loop; a
``budget_tokens`` too small for even one child fails the fan-out with ``BudgetExceeded``
(naming the budget and what one child needs), since an empty result would pass for one.
The join itself still depends on the fan-out (``compile.py``) and runs after it: it
applies the failure policy and the final reduction (vote, scores, winner) to the
fan-out's output.

Why not the other way round (the join as operator)? Only the step that starts the
children can add more of them (adaptive vote) and account their tokens against a
budget; and the join keeps the plain meaning "runs once the children are done", which
the trace, resume and ``${steps.join.output}`` rely on. The exception is ``map``,
whose items the engine starts: a join with an online reducer over a map is compiled to
start *with* the map and watches (and cancels) its items itself.

**Children are steps.** An LLM child is a :class:`~executors.fanout._call.SampleCall`
(kind ``sample``, pool ``llm:<model>``) run by :class:`SampleExecutor`; a sub-graph
child is a ``workflow`` step (a nested run, where a ``spawn`` may spawn again, down to
``max_depth``). Their ``graph_patched`` events record the fan-out as their parent: the
trace's parent/child tree. Children are ``handled``: their failure does not fail the
run, the join's policy decides.

**Output.** A fan-out's output is the children's outputs in declared order; a child that
did not succeed is an *error marker* ``{"error", "status", "child"}`` with status
``failed``, ``cancelled``, ``skipped``, ``not_started`` (budget, adaptive stop),
``rejected`` (failed the check; keeps ``output``) or ``late`` (finished after the
first-finish winner, or past the samples an adaptive stop was decided on; keeps
``output``). Without a join, a failed child fails the fan-out.

**Cancellation and tokens.** Stopping cancels the running children at their executor:
the awaiting task is cancelled, so the backend stops decoding (local) or closes its
stream (OpenAI-compatible). A single-sample child is streamed and notes the tokens it
had used (``ctx.note_usage``) while unwinding; the scheduler puts them on its
``step_cancelled`` event, so run totals include them. The fan-out's ``meta`` records
``tokens`` (all children), ``cancelled_tokens``, ``requests``, ``statuses``,
``finish_order``, ``stopped`` and ``samples_used``.
"""

from executors.fanout._call import SampleCall
from executors.fanout.join import JoinExecutor
from executors.fanout.sample import SampleExecutor
from executors.fanout.spawn import SpawnExecutor

__all__ = ["JoinExecutor", "SampleCall", "SampleExecutor", "SpawnExecutor"]
