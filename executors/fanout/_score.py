"""Scoring (best-of-n) and checking (first-finish) candidates.

A ``tool`` or ``llm`` scorer runs as child steps of the step that asks (in the trace, under
it; cancellable; their failure is a missing score, not a failed run). An ``endpoint``
scorer (a reward model behind an OpenAI-compatible server) is called directly, its
tokens counted on the asking step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from executors.fanout._call import SampleCall, call
from executors.fanout._live import LiveContext, Owner
from executors.fanout._reduce import as_text
from executors.llm.executor import UsageMeter
from orchestrator.errors import PonderError
from orchestrator.runtime.contracts import LLMBackend, LLMRequest, Usage, approx_tokens
from orchestrator.runtime.scheduler import StepPlan
from orchestrator.spec.kinds_fanout import Scorer
from orchestrator.spec.models import ModelConfig, ToolStep
from orchestrator.spec.patterns import PatternTimeout, search

#: the first number of a judge's reply: "8", "8/10" and "8 out of 10" are 8, "Score: 7.5"
#: is 7.5 (a scale after the number is not a fraction: the judge was asked for a score),
#: "2.3e-05" (a reward model's log-probability, say) is 2.3e-05
_SCORE_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_TRUE = {"true", "yes", "pass", "passed", "correct", "ok", "valid", "y"}
_FALSE = {"false", "no", "fail", "failed", "incorrect", "wrong", "invalid", "n", "none", ""}
#: a judge's first word that is its verdict (``Yes, ...``, ``No, because ...``)
_VERDICT_TRUE = {"true", "yes", "pass", "passed", "correct", "valid"}
_VERDICT_FALSE = {"false", "no", "fail", "failed", "incorrect", "wrong", "invalid"}
_WORD_RE = re.compile(r"[a-z]+")


@dataclass(slots=True)
class Candidate:
    """What a scorer sees: the child's index, its whole output as text, its answer (None:
    the whole output is the answer), the output itself, and the names the step that gave
    it saw besides ``inputs`` and ``steps`` (a map item's ``item`` and ``index``, see
    :func:`scope_of`).

    A tool scorer gets the output as it is (``${candidate}`` of a child that returned a
    JSON object is that object); a judge's prompt gets its text.
    """

    index: int
    text: str
    answer: Any
    value: Any = None
    scope: dict[str, Any] | None = None

    @classmethod
    def of(cls, index: int, output: Any, answer: Any,
           scope: dict[str, Any] | None = None) -> Candidate:
        return cls(index, as_text(output), answer, output, scope)

    def names(self, tool: bool) -> dict[str, Any]:
        """The names a scorer's arguments or prompt see besides ``inputs`` and ``steps``:
        those of the judged step (:attr:`scope`), then ``candidate``, ``answer`` and
        ``index`` (the value for a tool, the text for a judge), which win a clash: a
        judge scores its own candidate."""
        whole = self.value if tool else self.text
        return {**(self.scope or {}), "candidate": whole,
                "answer": whole if self.answer is None else self.answer, "index": self.index}


def scope_of(ctx: LiveContext, fanout_id: str, child_step_id: str | None) -> dict[str, Any]:
    """The names a fan-out's child was made with, as its judge should see them: a map
    item's (the map's item variable, ``index`` and what the map itself saw); for a
    ``sample`` or ``spawn``, the names the fan-out step saw (its requests' own
    ``_prompt`` is no name of the workflow's)."""
    plans = ctx.scheduler.plans
    fanout = plans.get(fanout_id)
    if fanout is None:
        return {}
    if fanout.kind == "map":
        item = plans.get(child_step_id) if child_step_id is not None else None
        if item is not None and item.group == fanout_id:
            return dict(item.locals or {})
    return dict(fanout.locals or {})


@dataclass(slots=True)
class Score:
    """A scorer's verdict on one candidate: ``value`` is None when it gave no number.
    ``failed``: the scorer itself failed (its step, template or server: ``error`` says
    why), it gave no verdict; an invalid score is a verdict."""

    index: int
    value: float | None
    raw: Any = None
    error: str | None = None
    step_id: str | None = None
    failed: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "score": self.value}
        if self.error:
            out["error"] = self.error
        if self.step_id:
            out["step"] = self.step_id
        return out


async def score_all(ctx: LiveContext, owner: Owner, scorer: Scorer,
                    cands: Sequence[Candidate], tag: str, usage: Usage, *,
                    numeric: bool = True,
                    home: tuple[str, str] | None = None) -> list[Score]:
    """Score candidates (concurrently).

    :param owner: the step the scoring children are added under.
    :param tag: names the children: ``OWNER[TAG<index>]``.
    :param usage: tokens of direct (endpoint) calls are added to it.
    :param home: the join and its field (``scorer`` or ``check``) that hold ``scorer``:
        a judge's template error names its file:line.
    :param numeric: a score must be a number (best-of-n, a check with a threshold): an
        output without one is an invalid score, with an ``error`` saying so. A check
        without a threshold also takes words (``yes``, ``pass``...).
    """
    if not cands:
        return []
    if scorer.source == "endpoint":
        return await _score_endpoint(ctx, owner, scorer, cands, tag, usage, numeric, home)
    steps: list[Any] = []
    locals_: dict[str, dict[str, Any]] = {}
    for c in cands:
        sid = owner.child(f"{tag}{c.index}")
        if scorer.source == "tool":
            step: Any = ToolStep(id="score", tool=scorer.tool or "", args=scorer.args)
            step = step.model_copy(update={"id": sid})
        else:
            step = _judge_call(scorer, sid, home)
        steps.append(step)
        locals_[sid] = c.names(scorer.source == "tool")
    ids = await ctx.add_steps(owner.step_id, steps, reason=f"{tag} {len(steps)} candidates",
                              locals_=locals_, cancellable=True, handled=True)
    outcomes: dict[str, Any] = {}
    try:
        outcomes = await ctx.wait_steps(ids)
    finally:
        if not outcomes:  # we are unwinding: the scorers go too
            ctx.cancel_steps(ids)
    out = []
    for c, sid in zip(cands, ids, strict=True):
        o = outcomes[sid]
        if o.status != "succeeded":
            out.append(Score(c.index, None, None, o.error or o.status, sid, failed=True))
            continue
        out.append(_scored(c.index, o.output, scorer, numeric, sid))
    return out


def _scored(index: int, raw: Any, scorer: Scorer, numeric: bool,
            step_id: str | None = None) -> Score:
    """The score of a scorer's output; without a number where one is needed, an invalid
    score whose error quotes the output (or says the pattern took too long)."""
    try:
        value = to_score(raw, scorer.score_pattern)
    except PatternTimeout as exc:
        return Score(index, None, raw, f"invalid score: {exc}", step_id)
    error = None
    if value is None and numeric:
        where = (f"no match of score_pattern {scorer.score_pattern!r}"
                 if scorer.score_pattern is not None and isinstance(raw, str)
                 else "not a finite number" if _numeric(raw) else "no number")
        error = f"invalid score: {where} in {str(raw)[:120]!r}"
    return Score(index, value, raw, error, step_id)


def _judge_call(scorer: Scorer, step_id: str, home: tuple[str, str] | None = None
                ) -> SampleCall:
    """The request of a judge (``llm``, or ``endpoint``, whose prompt is rendered as this
    step's would be though it is sent by the join itself). Its id is a child's (``s[0]``),
    which no written step may take: set past validation. ``home``: see :func:`score_all`."""
    judge = SampleCall(id="score", prompt=scorer.prompt, model=scorer.llm or "default", n=1,
                       max_tokens=scorer.max_tokens, temperature=0.0)
    judge = judge.model_copy(update={"id": step_id})
    return judge if home is None else judge.written_in(home[0], (home[1],))


def _endpoint_prompt(ctx: LiveContext, scorer: Scorer, c: Candidate, step_id: str,
                     home: tuple[str, str] | None = None) -> str:
    """An endpoint judge's prompt, rendered by the run's own preparer with the names an
    ``llm`` judge's step has: ``candidate``, ``answer``, ``index``, ``inputs``, ``steps``
    and the judged step's own (a map item's ``item``).

    :raises ReferenceResolutionError: (a subclass) when the template fails, naming the
        workflow's file:line of the failing template line (``home`` given).
    """
    step = _judge_call(scorer, step_id, home)
    plan = StepPlan(step_id, step.kind, step, (), "", 0.0, c.names(False))
    return str(ctx.scheduler.prepare(plan)["prompt"])


async def _score_endpoint(ctx: LiveContext, owner: Owner, scorer: Scorer,
                          cands: Sequence[Candidate], tag: str, usage: Usage,
                          numeric: bool, home: tuple[str, str] | None) -> list[Score]:
    backend = _endpoint_backend(ctx, scorer)
    out: list[Score | None] = [None] * len(cands)

    async def one(i: int, c: Candidate) -> None:
        try:
            prompt = _endpoint_prompt(ctx, scorer, c, owner.child(f"{tag}{c.index}"), home)
            request = LLMRequest(messages=[{"role": "user", "content": prompt}],
                                 max_tokens=scorer.max_tokens, temperature=0.0)
            meter = UsageMeter(approx_tokens(prompt))
            response = await call(backend, request, f"scorer:{scorer.endpoint}", meter)
        except PonderError as exc:
            out[i] = Score(c.index, None, None, str(exc), failed=True)
            return
        usage.prompt_tokens += response.prompt_tokens
        usage.completion_tokens += response.completion_tokens
        out[i] = _scored(c.index, response.text, scorer, numeric)

    async with anyio.create_task_group() as tg:
        for i, c in enumerate(cands):
            tg.start_soon(one, i, c)
    return [s for s in out if s is not None]


def _endpoint_backend(ctx: LiveContext, scorer: Scorer) -> LLMBackend:
    """The reward-model server's backend (``openai``, or the run's ``--backend`` override),
    from the run's backend cache when there is one (it is closed with the run)."""
    cache = getattr(ctx, "backends", None)
    override = getattr(cache, "override", None)
    config = ModelConfig(backend=override or "openai", base_url=scorer.endpoint,
                         model=scorer.model, api_key_env=scorer.api_key_env)
    if cache is not None and hasattr(cache, "get"):
        return cache.get(config)  # type: ignore[no-any-return]
    return ctx.registry.backend_factory(config.backend)(config)


def to_score(value: Any, pattern: str | None = None) -> float | None:
    """A number from a scorer's output: a number, a bool (1/0), a ``score`` field, or in a
    text the first number of the ``pattern`` group (default: of the whole text). A scale
    after it does not count: ``8/10`` and ``8 out of 10`` are 8, ``Score: 7.5`` is 7.5.
    None when there is no number, or it is not finite (NaN, or too large for a float:
    such a score would win every comparison or none)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return _finite(value)
    if isinstance(value, dict) and "score" in value:
        return to_score(value["score"], pattern)
    if isinstance(value, str):
        if pattern is not None:
            found = search(pattern, value)
            if found is None:
                return None
            value = found.group(1) if found.re.groups else found.group(0)
        m = _SCORE_RE.search(value)
        return None if m is None else _finite(m.group(0))
    return None


def _numeric(raw: Any) -> bool:
    """Whether a scorer's output holds a number (that then was not finite)."""
    if isinstance(raw, str):
        return _SCORE_RE.search(raw) is not None
    return isinstance(raw, int | float) and not isinstance(raw, bool)


def _finite(number: int | float | str) -> float | None:
    try:
        value = float(number)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def passes(score: Score, scorer: Scorer) -> bool:
    """A check's verdict: ``score >= threshold``, or without one the truth of the output.

    A tool's output is a value: ``true``/``yes``/``pass``... or ``false``/``no``..., a
    number (or a text that is only a number) that is not zero, any other non-empty value
    or text (the ``extract`` tool's match ``Answer: 0`` passes: it found an answer). A
    judge's reply (``llm``, ``endpoint``) is read as a verdict: its first word when that
    is one (``No, the answer is 42`` fails), else its first number, else it passes when
    it is not empty.
    """
    if score.error is not None:
        return False
    if scorer.threshold is not None:
        return score.value is not None and score.value >= scorer.threshold
    raw = score.raw
    if isinstance(raw, str):
        word = raw.strip().strip(".!").lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        if scorer.source == "tool":
            alone = _number_alone(word)
            return alone != 0 if alone is not None else bool(word)
        first = _WORD_RE.search(word)
        verdict = first.group(0) if first is not None else ""
        if verdict in _VERDICT_TRUE or verdict in _VERDICT_FALSE:
            return verdict in _VERDICT_TRUE
        return score.value != 0 if score.value is not None else bool(word)
    if isinstance(raw, dict) and "score" in raw:
        return bool(score.value)
    return bool(raw)


def _number_alone(text: str) -> float | None:
    """The number a text is, when it is nothing else (``0``, ``-1.5``); else None."""
    try:
        return _finite(text.strip())
    except ValueError:
        return None
