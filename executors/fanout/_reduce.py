"""Reducers as pure code: answers, normalisation, votes, the adaptive stopping rules, and
the failure policy. No I/O, no clock (scoring, which calls tools and models, is in
:mod:`executors.fanout._score`)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from executors.fanout._live import Child
from orchestrator.errors import StepError
from orchestrator.spec.kinds_fanout import JoinStep
from orchestrator.spec.patterns import find_all

#: a number as answers write it: a sign only where it is not a hyphen between two terms
#: (``24-18`` holds 24 and 18, ``2023-10-05`` no -5; U+2212 is a minus too), thousands
#: separators, decimals, a fraction or an exponent (``2.5e-3``)
_NUMBER_RE = re.compile(
    r"(?:(?<![\w)\]])[-+\u2212])?"
    r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:/\d+|[eE][-+]?\d+)?")
_NO_ANSWER = object()


def as_text(value: Any) -> str:
    """A child's output as text (JSON for structured outputs)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _canonical(value: Any) -> Any:
    """A JSON value with integral floats as ints (``7.0`` is the answer ``7``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def vote_text(value: Any) -> str:
    """A child's output as a vote reads it: the text, or canonical JSON for a structured
    or numeric output (keys sorted, ``7.0`` written ``7``), so equal values vote alike.
    A vote compares answers as text: the number ``7`` and the text ``"7"`` are one answer,
    ``true`` and ``1`` are two (the README says so)."""
    return value if isinstance(value, str) else as_text(_canonical(value))


def extract_answer(text: str, pattern: str | None) -> str | None:
    """The answer in a text: the ``answer`` group (else the first group, else the whole
    match) of the *last* match of ``pattern``; the whole text without a pattern.

    The last match, because reasoning states intermediate values before the final one.

    :raises PatternTimeout: when matching takes too long (the join fails, naming it).
    """
    if pattern is None:
        return text
    matches = find_all(pattern, text)
    if not matches:
        return None
    m = matches[-1]
    if "answer" in m.re.groupindex:
        return m.group("answer")
    return m.group(1) if m.re.groups else m.group(0)


def parse_number(text: str) -> int | float | None:
    """The last number in a text (``1,234``, ``-3.5``, ``7/2``, ``1.5e6``), as int when
    integral; None when there is none, or it is past a float's range."""
    found = _NUMBER_RE.findall(text)
    if not found:
        return None
    raw = found[-1].replace(",", "").replace("\u2212", "-")
    try:
        if "/" in raw:
            num, den = raw.split("/")
            value = float(num) / float(den)
        else:
            value = float(raw)
    except (ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(value):  # 1e999: no number JSON can write
        return None
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return round(value, 9)


def normalize(answer: str, steps: Sequence[str]) -> Any:
    """Apply normalisers in order; returns the vote key, or ``_NO_ANSWER``.

    ``number`` turns the answer into an int or float (no number: no answer).
    """
    return _normalized(answer, steps)[0]


def _normalized(answer: str, steps: Sequence[str]) -> tuple[Any, str | None]:
    """The vote key (or ``_NO_ANSWER``) and the normaliser that found no answer (``number``
    finding no number), None when none did (an answer left empty has no such one)."""
    value: Any = answer
    for name in steps:
        if not isinstance(value, str):
            break
        if name == "strip":
            value = _strip(value)
        elif name == "lower":
            value = value.lower()
        elif name == "collapse_spaces":
            value = " ".join(value.split())
        elif name == "number":
            value = parse_number(value)
            if value is None:
                return _NO_ANSWER, name
    if value == "":
        return _NO_ANSWER, None
    return value, None


def _strip(text: str) -> str:
    """The ``strip`` normaliser: spaces and the periods that end a sentence (``42.``) or
    trail off (``...``) around the answer; a period before a digit is a decimal point
    (``.5`` is 0.5, not 5) and stays."""
    text = text.strip().rstrip(".").strip()
    dots = len(text) - len(text.lstrip("."))
    if dots and not (dots == 1 and text[1:2].isdigit()):
        text = text[dots:].strip()
    return text


@dataclass(slots=True)
class Answer:
    """One child's answer for a vote.

    :param key: what is counted (the normalised answer).
    :param value: what the vote gives when this answer wins: the key, or, for a child
        whose whole output is a number or JSON value (no ``extract``, no ``number``
        normaliser), that output itself rather than its text.
    """

    index: int
    key: Any
    length: int
    value: Any = _NO_ANSWER


def answers_of(children: Sequence[Child], join: JoinStep) -> tuple[list[Answer], list[int]]:
    """Answers of the succeeded children, and the indices where none was found."""
    found: list[Answer] = []
    invalid: list[int] = []
    for child in children:
        if not child.ok:
            continue
        text = vote_text(child.output)
        raw = extract_answer(text, join.extract)
        key = _NO_ANSWER if raw is None else normalize(raw, join.normalize)
        if key is _NO_ANSWER:
            invalid.append(child.index)
            continue
        whole = (join.extract is None and not isinstance(child.output, str)
                 and isinstance(key, str))
        found.append(Answer(child.index, key, len(text), child.output if whole else key))
    return found, invalid


def answer_of(child: Child, join: JoinStep) -> Any:
    """One child's normalised answer, or None (for scorers' ``${answer}``)."""
    raw = extract_answer(vote_text(child.output), join.extract)
    key = _NO_ANSWER if raw is None else normalize(raw, join.normalize)
    return None if key is _NO_ANSWER else key


@dataclass(slots=True)
class Tally:
    """Votes per answer, in order of first appearance."""

    counts: dict[str, int] = field(default_factory=dict)
    keys: dict[str, Any] = field(default_factory=dict)
    supporters: dict[str, list[Answer]] = field(default_factory=dict)

    @classmethod
    def of(cls, answers: Sequence[Answer]) -> Tally:
        tally = cls()
        for a in sorted(answers, key=lambda a: a.index):
            k = json.dumps(a.key, sort_keys=True)
            tally.counts[k] = tally.counts.get(k, 0) + 1
            tally.keys.setdefault(k, a.key)
            tally.supporters.setdefault(k, []).append(a)
        return tally

    def value(self, key: Any) -> Any:
        """What the vote gives for the answer ``key``: its first supporter's value (see
        :class:`Answer`)."""
        first = self.supporters[json.dumps(key, sort_keys=True)][0]
        return first.key if first.value is _NO_ANSWER else first.value

    @property
    def valid(self) -> int:
        return sum(self.counts.values())

    def leader(self, tie_break: str = "first") -> tuple[Any, int]:
        """The winning answer and its count.

        :param tie_break: among answers with the most votes: ``first`` (earliest child in
            declared order), ``shortest`` / ``longest`` (the shortest / longest output
            among its supporters).
        """
        top = max(self.counts.values())
        tied = [k for k, c in self.counts.items() if c == top]
        if tie_break == "shortest":
            best = min(tied, key=lambda k: (min(a.length for a in self.supporters[k]),
                                            self.supporters[k][0].index))
        elif tie_break == "longest":
            best = min(tied, key=lambda k: (-max(a.length for a in self.supporters[k]),
                                            self.supporters[k][0].index))
        else:
            best = min(tied, key=lambda k: self.supporters[k][0].index)
        return self.keys[best], top

    def top_two(self) -> tuple[int, int]:
        """The counts of the leading answer and of the runner-up (0 when none)."""
        ranked = [*sorted(self.counts.values(), reverse=True), 0, 0]
        return ranked[0], ranked[1]

    def contest(self, tie_break: str = "first") -> tuple[int, int, int, bool]:
        """The leader's votes, the runner-up's, all others', and whether a final tie
        between those two would go to the runner-up.

        Under ``first`` a tie goes to whichever answered first, which later samples
        cannot change; under ``shortest`` / ``longest`` it depends on lengths not yet
        sampled, so a tie counts as the runner-up's (the cautious side).
        """
        if not self.counts:
            return 0, 0, 0, False
        leader = json.dumps(self.leader(tie_break)[0], sort_keys=True)
        top = self.counts[leader]
        rest = {k: c for k, c in self.counts.items() if k != leader}
        second = max(rest.values(), default=0)
        if tie_break != "first":
            ties_lost = True
        else:
            first = self.supporters[leader][0].index
            ties_lost = any(c == second and self.supporters[k][0].index < first
                            for k, c in rest.items())
        return top, second, self.valid - top - second, ties_lost

    def votes(self) -> dict[str, int]:
        """Counts keyed by the answer's text (for the trace)."""
        return {as_text(self.keys[k]): c for k, c in self.counts.items()}


#: ``confidence`` when a join gives none: Adaptive-Consistency's threshold for beta, and
#: the simple rule's historical share
DEFAULT_CONFIDENCE: dict[str, float] = {"beta": 0.95, "share": 0.75}


def threshold(join: JoinStep) -> float:
    """The join's ``confidence``, or its stopping rule's default (``beta``, ``share``)."""
    given: float | None = join.confidence
    return given if given is not None else DEFAULT_CONFIDENCE[join.stop_rule]


def beta_confidence(top: int, second: int) -> float:
    """Adaptive-Consistency's Beta criterion (Aggarwal et al., EMNLP 2023): with a uniform
    prior, the probability that the leading answer is more likely than the runner-up,
    ``P(x > 1/2)`` for ``x ~ Beta(top + 1, second + 1)``.

    Exact for integer counts: ``1 - I_{1/2}(a, b) = P(Binomial(a + b - 1, 1/2) <= a - 1)``.
    """
    n = top + second + 1
    return sum(math.comb(n, k) for k in range(top + 1)) / (1 << n)


def flip_risk(top: int, second: int, others: int, remaining: int,
              ties_lost: bool = False) -> float:
    """The posterior-predictive probability that ``remaining`` more samples make the
    runner-up finish ahead of the leader (or level with it, when ``ties_lost``).

    Model: the chances ``p`` of the leader, the runner-up and every other answer together
    are ``Dirichlet(top + 1, second + 1, others + 1)`` (a uniform prior), so the next
    samples' counts ``(x, y, z)`` are Dirichlet-multinomial. With integer parameters
    that is a Polya urn, ``P(x, y, z) = C(top+x, x) C(second+y, y) C(others+z, z) /
    C(top+second+others+2+remaining, remaining)``, summed exactly in integers over the
    ``(x, y)`` where ``second + y > top + x`` (``>=`` when ``ties_lost``). Another
    answer overtaking the leader is not counted: ``others`` are one group here, each of
    them with no more votes than the runner-up.

    :raises ValueError: for a negative count.
    """
    if min(top, second, others, remaining) < 0:
        raise ValueError("counts must not be negative")
    lost = 0
    for x in range(remaining + 1):
        # the runner-up needs y > top + x - second (or >= on a lost tie) of the r - x left
        need = max(0, top + x - second + (0 if ties_lost else 1))
        lead = math.comb(top + x, x)
        for y in range(need, remaining - x + 1):
            z = remaining - x - y
            lost += lead * math.comb(second + y, y) * math.comb(others + z, z)
    return lost / math.comb(top + second + others + 2 + remaining, remaining)


#: ``risk`` when a predictive join gives none
DEFAULT_RISK = 0.05


def risk(join: JoinStep) -> float:
    """The join's ``risk``, or :data:`DEFAULT_RISK`."""
    given: float | None = join.risk
    return given if given is not None else DEFAULT_RISK


def rule_value(tally: Tally, join: JoinStep, remaining: int) -> float:
    """The statistic the join's stopping rule compares with its threshold: the Beta
    posterior probability (``beta``), the leading answer's share (``share``), or the
    probability that the ``remaining`` samples up to ``max_n`` would change the winner
    (``predictive``, :func:`flip_risk`)."""
    if join.stop_rule == "predictive":
        top, second, others, ties_lost = tally.contest(join.tie_break)
        return flip_risk(top, second, others, remaining, ties_lost)
    top, second = tally.top_two()
    if join.stop_rule == "beta":
        return beta_confidence(top, second)
    return top / tally.valid


def confident(tally: Tally, join: JoinStep, remaining: int) -> bool:
    """Adaptive vote's stopping rule: at least ``min_n`` valid answers, and the rule's
    statistic (:func:`rule_value`) at least its threshold (at most ``risk`` for
    ``predictive``).

    :param remaining: samples left before ``max_n`` (the predictive rule's horizon).
    """
    if tally.valid < join.min_n:
        return False
    value = rule_value(tally, join, remaining)
    if join.stop_rule == "predictive":
        return value <= risk(join)
    return value >= threshold(join)


def decided(tally: Tally, remaining: int) -> bool:
    """Whether ``remaining`` more samples could not change the winner: the leader's lead
    over the runner-up is larger than them (a tie is not ruled out by an equal lead).
    Stopping then gives the answer a vote over every sample would give."""
    top, second = tally.top_two()
    return bool(tally.counts) and top - second > remaining


def apply_policy(children: Sequence[Child], join: JoinStep, fanout_id: str) -> list[Child]:
    """The succeeded children, in declared order, if the policy accepts the outcome.

    Failures are ``failed`` and ``skipped`` children (a timeout is a failure). Children
    the reducer cancelled, rejected or never started are not: ``ignore_failures`` fails
    only when every child that ran failed, ``min_successes`` whenever fewer succeeded.

    :raises StepError: naming the failed children when the policy refuses.
    """
    ok = [c for c in children if c.ok]
    failed = [c for c in children if c.status in ("failed", "skipped")]
    # children of one shared request share its step and its error: named once
    named = list(dict.fromkeys(f"{c.step_id or c.index}: {c.error}" for c in failed))
    shown = "; ".join(named[:3])
    more = f" (and {len(named) - 3} more)" if len(named) > 3 else ""
    if join.policy == "require_all" and failed:
        raise StepError(f"join {join.id!r} requires every child of {fanout_id!r}; "
                        f"{len(failed)} of {len(children)} failed: {shown}{more}",
                        step_id=join.id)
    # ignore_failures needs one success only when something failed: children a budget or
    # max_depth never started are no failure, and may leave nothing to join
    need = join.min_successes if join.policy == "min_successes" else min(1, len(failed))
    if len(ok) < need:
        what = (f"every child of {fanout_id!r} failed ({len(failed)} of {len(children)})"
                if children and len(failed) == len(children) else
                f"{len(ok)} of {len(children)} children of {fanout_id!r} succeeded, "
                f"{need} needed")
        checked = check_verdicts(children)  # first_finish: children its check rejected
        raise StepError(f"join {join.id!r}: {what}" + (f": {shown}{more}" if failed else "")
                        + (f"; others finished but did not pass the check: {'; '.join(checked)}"
                           if checked else ""), step_id=join.id)
    return ok


#: how a rejected child's error starts when first_finish's check could not judge it (its
#: step, template or server failed), not when the check answered "no"
CHECK_ERRORED = "failed the check, which errored: "


def no_pass_error(join: JoinStep, fanout_id: str, children: Sequence[Child]) -> StepError:
    """The error of a first_finish join none of whose children finished and passed the
    check: how many the check turned down by its answer and how many it could not judge
    (it errored), with the first error of each kind (a check's error names its template's
    file:line), and what became of the other children."""
    parts = check_verdicts(children)
    others = [c for c in children if c.status != "rejected"]
    if others:
        parts.append(seen_children(others))
    what = "finished and passed the check" if join.check is not None else "finished"
    count = f"{len(children)} child" + ("ren" if len(children) != 1 else "")
    seen = (f"of its {count}, {'; '.join(parts)}" if parts else
            "it has no children")
    return StepError(f"join {join.id!r}: no child of {fanout_id!r} {what}: {seen}",
                     step_id=join.id)


def seen_children(children: Sequence[Child]) -> str:
    """The children's statuses (``not_started 2, succeeded 1``; ``no children``) and why
    the first that did not succeed did not (a budget, max_depth, a failure...)."""
    statuses = Counter(c.status for c in children)
    seen = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "no children"
    why = next((c for c in children if not c.ok and c.error), None)
    if why is None:
        return seen
    return f"{seen}; child {why.step_id or why.index}: {why.error}"


def check_verdicts(children: Sequence[Child]) -> list[str]:
    """What first_finish's check made of the children it rejected: how many it errored on
    and how many its answer turned down, with the first child of each (none: [])."""
    rejected = [c for c in children if c.status == "rejected"]
    errored = [c for c in rejected if (c.error or "").startswith(CHECK_ERRORED)]
    refused = [c for c in rejected if c not in errored]
    parts = []
    if errored:
        first = errored[0]
        parts.append(f"the check errored on {len(errored)} (child "
                     f"{first.step_id or first.index}: "
                     f"{(first.error or '')[len(CHECK_ERRORED):]})")
    if refused:
        first = refused[0]
        why = (first.error or "").removeprefix("failed the check").strip(" :()")
        parts.append(f"its answer turned down {len(refused)} (child "
                     f"{first.step_id or first.index}: {why or 'rejected'})")
    return parts


def no_answer_error(join: JoinStep, fanout_id: str, ok: Sequence[Child],
                    children: Sequence[Child] = (), cut_short: int = 0) -> StepError:
    """The error of a vote with no valid answer: no child gave a message, or the extractor
    (shown as written) or the normalisation found an answer in none of them. Which one:
    an extractor that matched is not blamed for a ``number`` normaliser that then found no
    number in what it matched.

    :param cut_short: how many answers stopped at max_tokens (known to the fan-out; the
        children ``ok`` flag theirs too): the error says so."""
    if not ok:
        seen = seen_children(children)
        return StepError(f"join {join.id!r} ({join.reducer}): no child of {fanout_id!r} gave "
                         f"a message to vote on ({seen})", step_id=join.id)
    cut = max(cut_short, sum(c.cut_short for c in ok))
    why = (f"; {cut} of them stopped at max_tokens, so the answer may be cut off: raise "
           f"{fanout_id!r}'s max_tokens" if cut else "")
    causes: dict[str, list[tuple[Child, str]]] = {}
    for child in ok:
        kind, text = _why_no_answer(child, join)
        causes.setdefault(kind, []).append((child, text))
    if list(causes) == ["extract"]:
        first = as_text(ok[0].output)
        return StepError(f"join {join.id!r} ({join.reducer}): the extractor `{join.extract}` "
                         f"found no answer in any of the {len(ok)} succeeded children of "
                         f"{fanout_id!r} (child {ok[0].index} wrote {first[:80]!r}){why}",
                         step_id=join.id)
    shown = "; ".join(
        f"{seen[0][1]} (child {seen[0][0].index} wrote {as_text(seen[0][0].output)[:80]!r}"
        + (f"; so in {len(seen)} of them)" if len(causes) > 1 else ")")
        for seen in causes.values())
    return StepError(f"join {join.id!r} ({join.reducer}): no answer in any of the {len(ok)} "
                     f"succeeded children of {fanout_id!r}: {shown}{why}", step_id=join.id)


def _why_no_answer(child: Child, join: JoinStep) -> tuple[str, str]:
    """Why a succeeded child gave no answer to vote on, as a kind and its text: its
    extractor found none (``extract``), a normaliser found none in what it found
    (``number``: no number in it), or the normalisation left nothing (``empty``)."""
    raw = extract_answer(vote_text(child.output), join.extract)
    if raw is None:
        return "extract", f"the extractor `{join.extract}` found no answer"
    what = "the extracted answer" if join.extract is not None else "the answer"
    failed = _normalized(raw, join.normalize)[1]
    if failed is not None:
        return failed, f"normalize `{failed}` found no number in {what} {raw[:80]!r}"
    return "empty", f"normalisation ({', '.join(join.normalize)}) left {what} {raw[:80]!r} empty"
