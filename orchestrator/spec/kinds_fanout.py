"""Fan-out steps for parallel threads of thought: `spawn`, `sample` and `join`.

Semantics follow Adaptive Parallel Reasoning (spawn/join) and the test-time scaling
operators (vote, best-of-n, first-finish, adaptive vote). Executed by `executors/fanout`,
whose module docstring describes the run-time design.

- ``spawn`` starts one child thread per message. A child sees only what the parent
  passes it (``context`` and its ``message``), runs one LLM call or a whole
  sub-workflow, and returns a message of its own choosing (its answer, or the
  sub-workflow's output). Children of a sub-workflow may spawn again, down to
  ``max_depth`` nested runs (at most :data:`MAX_NESTING_DEPTH`); a spawn nested under
  another may not go deeper than its ancestor's ``max_depth`` allows, whatever its own
  says.
- ``sample`` asks one prompt for ``n`` samples: one request with ``n`` where the
  backend can, ``n`` requests where the reducer needs them apart (first-finish cancels
  losers one by one; adaptive vote adds batches).
- ``join`` reduces the children of a fan-out (``map``, ``spawn`` or ``sample``):
  ``concat``, ``vote``, ``best_of_n``, ``first_finish`` or ``adaptive_vote``, under a
  failure policy. The fan-out step consults the join that names it while its children
  run (to stop early or to add samples).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from orchestrator.spec.base import (
    TOP_P_DOC,
    Integer,
    Number,
    OptionalInteger,
    OptionalNumber,
    StepBase,
    _Model,
)
from orchestrator.spec.patterns import PatternError, compile_pattern
from orchestrator.spec.refs import Ref, iter_refs
from orchestrator.spec.templates import undeclared_names

#: reducers that act while the children run (stop early, add samples)
ONLINE_REDUCERS = ("first_finish", "adaptive_vote")

#: The deepest a nested run may be (a sub-workflow's run is one deeper than its caller's).
#: The one bound for both the engine, which refuses to start a run deeper than this, and
#: a spawn's ``max_depth``, which may not ask for more.
MAX_NESTING_DEPTH = 8

Normalizer = Literal["strip", "lower", "number", "collapse_spaces"]
_STRIP: tuple[Normalizer, ...] = ("strip",)

DEFAULT_SCORE_PROMPT = (
    "Rate how good this answer is, from 0 (wrong) to 10 (certainly right). "
    "Reply with the number only.\n\nAnswer:\n{{ candidate }}"
)


def _check_regex(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        rx = compile_pattern(value)  # what the run matches with
    except PatternError as exc:
        raise ValueError(f"{what} {exc}") from None
    if rx.groups > 1 and "answer" not in rx.groupindex:
        raise ValueError(f"{what} {value!r} has {rx.groups} groups: use one, or name the "
                         "answer's group `(?P<answer>...)`")
    return value


#: the names a join's judge (its ``scorer`` or ``check``) is rendered with besides
#: ``inputs`` and ``steps``: its own candidate's, which win over a judged step's names
JUDGE_NAMES = ("candidate", "answer", "index")


def _reads(scorer: Scorer, name: str) -> bool:
    """Whether the prompt or args written for ``scorer`` read ``name``. Its defaults read
    only the judge's own names, which mean its own candidate whatever a map's ``as:`` is."""
    if scorer.tool is not None:
        return "args" in scorer.model_fields_set and any(
            isinstance(ref, Ref) and ref.root == name for ref, _ in iter_refs(scorer.args))
    return "prompt" in scorer.model_fields_set and name in undeclared_names(scorer.prompt)


def judge_name_clash(join: JoinStep, map_id: str, item_var: str) -> tuple[str, str] | None:
    """The problem and its hint when ``join`` judges the items of map ``map_id``, whose
    item variable (its ``as:``) is one of the names its judge reserves (:data:`JUDGE_NAMES`)
    and its judge's prompt or args read that name: they would silently get the judge's own
    value, not the item. None when there is no clash (a judge that does not read the name
    loses nothing)."""
    judge = "scorer" if join.scorer is not None else "check" if join.check is not None else None
    if judge is None or item_var not in JUDGE_NAMES:
        return None
    scorer = join.scorer if join.scorer is not None else join.check
    if scorer is None or not _reads(scorer, item_var):
        return None
    reserved = ", ".join(f"`{n}`" for n in JUDGE_NAMES)
    return (f"map {map_id!r}: `as: {item_var}` is a name the {judge} of join {join.id!r} "
            f"reserves ({reserved} are the judged candidate's own), so the judge would not "
            "see the map's item",
            "give the item another name, e.g. `as: item`")


class Scorer(_Model):
    """How ``best_of_n`` scores a candidate, or how ``first_finish`` checks one.

    Give exactly one source:

    - ``tool``: a registered tool called with ``args``, where ``${candidate}`` (the
      child's whole output), ``${answer}`` (what the join's ``extract`` found, else the
      candidate) and ``${index}`` are available; its return value is the score.
    - ``llm``: a model alias of the workflow; ``prompt`` (a template with ``candidate``,
      ``answer``, ``index``, ``inputs`` and ``steps``) is sent and the first number of
      the reply (or of ``score_pattern``'s group) is the score: ``8``, ``8/10``,
      ``8 out of 10`` and ``Score: 8`` all score 8. A reply without a number is an
      invalid score (recorded on the join with the reply); it is not a candidate's score.
    - ``endpoint``: the base URL of an OpenAI-compatible server (a reward model served
      by vLLM, say) with ``model``; scored like ``llm``.

    A check passes when the score is at least ``threshold``. Without a threshold, a
    tool's value passes when it is true: ``true``/``yes``/``pass`` (not ``false``/``no``),
    a number (or a text that is only a number) that is not 0, any other non-empty value
    or text (the ``extract`` tool's ``Answer: 0``); a judge's reply (``llm``,
    ``endpoint``) by its first word when that is a verdict (``No, ...`` fails), else by
    its first number (not 0), else when it is not empty.

    A scorer of a ``map``'s items also sees what the item's step saw: the map's item
    variable (``item``, or its ``as:``), with ``index`` the item's index.
    """

    tool: str | None = Field(None, description="A registered tool that returns the score.")
    args: dict[str, Any] = Field(default_factory=lambda: {"text": "${answer}"},
                                 description="Tool arguments; `${candidate}`, `${answer}`, "
                                             "`${index}` and `${inputs.*}` resolve; over a "
                                             "map, its item too (`${item}` or its `as:`).")
    llm: str | None = Field(None, description="Model alias of an LLM judge.")
    endpoint: str | None = Field(None, description="Base URL of an OpenAI-compatible "
                                                   "reward-model server.")
    model: str | None = Field(None, description="Model name sent to `endpoint`.")
    api_key_env: str | None = Field(None, description="Environment variable with the key.")
    prompt: str = Field(DEFAULT_SCORE_PROMPT, description="Judge prompt template (llm, endpoint).")
    score_pattern: str | None = Field(None, description="Regex whose group is the score in a "
                                                        "reply (default: the first number).")
    max_tokens: Integer = Field(16, ge=1, le=100_000)
    threshold: OptionalNumber = Field(None, description="A check passes at this score or above.")

    @model_validator(mode="after")
    def _one_source(self) -> Scorer:
        given = [k for k in ("tool", "llm", "endpoint") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `tool`, `llm` and `endpoint` "
                             f"(got {', '.join(given) or 'none'})")
        if self.endpoint is not None and not self.model:
            raise ValueError("an `endpoint` scorer needs `model` (the name the server serves)")
        _check_regex(self.score_pattern, "score_pattern")
        return self

    @property
    def source(self) -> Literal["tool", "llm", "endpoint"]:
        return "tool" if self.tool else "llm" if self.llm else "endpoint"


class SpawnStep(StepBase):
    """Start one child thread per message; each child sees only what it is passed.

    The output is the children's return messages in the order of ``messages``; a child
    that did not succeed is an error marker ``{"error", "status", "child"}``. Without
    a join, any failed child fails the spawn (as a map does); with one, the join's
    policy decides.
    """

    kind: Literal["spawn"] = "spawn"
    messages: Any = Field(None, description="A list of messages (strings or JSON values), "
                                            "or a reference to one.")
    messages_prompt: str | None = Field(
        None, description="Template: ask `model` for the messages instead (a JSON list, or "
                          "one message per line).")
    context: str | None = Field(None, description="Template: context passed to every child.")
    prompt: str = Field("{{ context }}\n\n{{ message }}",
                        description="Template of a child's prompt (`message`, `context`, "
                                    "`index`, `depth`).")
    system: str | None = Field(None, description="Template of a child's system message.")
    workflow: str | None = Field(None, description="Run this sub-workflow per child instead "
                                                   "of one LLM call.")
    inputs: dict[str, Any] = Field(
        default_factory=lambda: {"message": "${message}"},
        description="Inputs of a child sub-workflow; `${message}`, `${context}`, `${index}` "
                    "and `${depth}` resolve.")
    model: str = "default"
    max_tokens: Integer = Field(256, ge=1, le=1_000_000)
    temperature: Number = Field(0.7, ge=0, le=2)
    top_p: OptionalNumber = Field(None, gt=0, le=1, description=TOP_P_DOC)
    stop: list[str] | None = None
    max_children: Integer = Field(16, ge=1, le=1024,
                                  description="Child budget: messages past it are not started.")
    max_depth: Integer = Field(2, ge=1, le=MAX_NESTING_DEPTH,
                               description="The depth of nested runs down to which children may "
                                       "be started: a spawn in a run at depth d < max_depth "
                                       "starts children at depth d + 1 (the top run is at "
                                       "0). A spawn nested under another is held to the "
                                       "smaller of its own and its ancestors' max_depth. At "
                                       f"most {MAX_NESTING_DEPTH}, the engine's nesting "
                                       "limit.")
    concurrency: OptionalInteger = Field(None, ge=1, description="Children running at once.")
    budget_tokens: OptionalInteger = Field(None, ge=1,
                                           description="Tokens (prompt + completion) all children "
                                                  "may spend; no child starts past it. A "
                                                  "budget too small for one child (its "
                                                  "max_tokens + prompt) fails the step.")
    child_timeout_s: OptionalNumber = Field(None, gt=0, description="Per-child attempt timeout.")

    resolved_fields = ("messages",)
    template_fields = ("context", "messages_prompt")

    @model_validator(mode="after")
    def _one_message_source(self) -> SpawnStep:
        if (self.messages is None) == (self.messages_prompt is None):
            raise ValueError("give exactly one of `messages` and `messages_prompt`")
        if self.workflow is None and "inputs" in self.model_fields_set:
            raise ValueError("`inputs` are for a child `workflow`; an LLM child uses `prompt`")
        return self


class SampleStep(StepBase):
    """Ask the model for `n` samples of one prompt (one request where the backend can).

    The output is the list of the ``n`` texts (error markers for samples that failed).
    """

    #: True for the requests a fan-out adds (they wait in their model's pool); the
    #: operator itself waits in the ``sample`` pool, or it would hold a model slot its
    #: own requests need
    is_request: ClassVar[bool] = False
    kind: Literal["sample"] = "sample"
    prompt: str
    system: str | None = None
    model: str = "default"
    n: Integer = Field(4, ge=1, le=256)
    max_tokens: Integer = Field(256, ge=1, le=1_000_000)
    temperature: Number = Field(0.8, ge=0, le=2)
    top_p: OptionalNumber = Field(None, gt=0, le=1, description=TOP_P_DOC)
    stop: list[str] | None = None
    seed: OptionalInteger = Field(None, description="Base seed; sample i asks with seed + i.")
    requests: Literal["auto", "shared", "separate"] = Field(
        "auto", description="auto: one request with `n` unless the join needs samples apart "
                            "(first_finish, a budget) or the backend says it cannot; shared: "
                            "always one (batches for adaptive_vote); separate: n requests.")
    concurrency: OptionalInteger = Field(None, ge=1, description="Separate requests at once.")
    budget_tokens: OptionalInteger = Field(None, ge=1,
                                           description="Tokens (prompt + completion) the samples "
                                                  "may spend; no request starts past it. A "
                                                  "budget too small for one request (its "
                                                  "max_tokens + prompt) fails the step.")

    template_fields = ("prompt", "system")


class JoinStep(StepBase):
    """Reduce the children of a fan-out (`map`, `spawn` or `sample`) into one output.

    Children that failed are handled by ``policy``: ``require_all`` fails the join,
    ``ignore_failures`` drops them (at least one must succeed), ``min_successes`` needs
    ``min_successes`` of them. Children cancelled by the reducer itself (first-finish
    losers) or never started (budget, adaptive vote) are not failures.
    """

    kind: Literal["join"] = "join"
    of: str = Field(description="The id of the fan-out step whose children are joined.")
    reducer: Literal["concat", "vote", "best_of_n", "first_finish", "adaptive_vote"] = "concat"
    policy: Literal["require_all", "ignore_failures", "min_successes"] = "ignore_failures"
    min_successes: Integer = Field(1, ge=1)
    extract: str | None = Field(None, description="Regex; its (last) match's group is the "
                                                  "answer. Default: the whole output.")
    normalize: list[Normalizer] = Field(default_factory=lambda: list(_STRIP))
    tie_break: Literal["first", "shortest", "longest"] = "first"
    scorer: Scorer | None = Field(None, description="best_of_n: how to score a candidate.")
    check: Scorer | None = Field(None, description="first_finish: accept only outputs "
                                                   "passing this.")
    first: Integer = Field(1, ge=1, le=256, description="first_finish: stop once this many "
                           "children have finished (and passed `check`); above 1 the answer "
                           "is their vote (`extract`, `normalize`, `tie_break`): short-m@k, "
                           "Hassid et al. 2025.")
    stop_rule: Literal["beta", "share", "predictive"] = Field(
        "beta", description="adaptive_vote stopping rule. beta (Adaptive-Consistency, "
        "Aggarwal et al. 2023): stop when the posterior probability that the leading answer "
        "beats the runner-up, Beta(top+1, second+1) > 1/2, reaches `confidence`. share: stop "
        "when the leading answer's share of the valid answers reaches `confidence`. "
        "predictive: stop when the posterior-predictive probability that sampling on to "
        "max_n would make the runner-up win (posterior Dirichlet(top+1, second+1, rest+1) "
        "over the leader, the runner-up and the rest; ties per `tie_break`) is at most "
        "`risk`. Every rule also stops once the samples left up to max_n could not change "
        "the winner.")
    confidence: OptionalNumber = Field(None, gt=0, le=1, description="adaptive_vote threshold "
                                       "of `stop_rule`; default 0.95 for beta, 0.75 for share.")
    risk: OptionalNumber = Field(None, gt=0, lt=1, description="adaptive_vote with stop_rule "
                                 "predictive: stop once the probability that a vote over max_n "
                                 "samples would pick another winner is at most this; default "
                                 "0.05.")
    batch: Integer = Field(1, ge=1, le=64, description="adaptive_vote samples per round.")
    min_n: Integer = Field(3, ge=1, le=256, description="adaptive_vote: fewest valid answers "
                                                    "before it may stop.")
    max_n: Integer = Field(16, ge=1, le=256, description="adaptive_vote sample cap.")

    @field_validator("extract")
    @classmethod
    def _extract_is_regex(cls, value: str | None) -> str | None:
        return _check_regex(value, "extract")

    @model_validator(mode="after")
    def _fields_match_reducer(self) -> JoinStep:
        if self.reducer == "best_of_n" and self.scorer is None:
            raise ValueError("reducer best_of_n needs a `scorer` ({tool: ...}, {llm: ...} or "
                             "{endpoint: ..., model: ...})")
        if self.scorer is not None and self.reducer != "best_of_n":
            raise ValueError(f"`scorer` is used by best_of_n only, not {self.reducer}")
        if self.check is not None and self.reducer != "first_finish":
            raise ValueError(f"`check` is used by first_finish only, not {self.reducer}")
        if "first" in self.model_fields_set and self.reducer != "first_finish":
            raise ValueError(f"`first` is used by first_finish only, not {self.reducer}")
        if "min_successes" in self.model_fields_set and self.policy != "min_successes":
            raise ValueError("`min_successes` needs `policy: min_successes`")
        if self.risk is not None and (self.reducer != "adaptive_vote"
                                      or self.stop_rule != "predictive"):
            raise ValueError("`risk` is used by adaptive_vote with `stop_rule: predictive` "
                             f"only (got reducer {self.reducer}, stop_rule {self.stop_rule})")
        if self.stop_rule == "predictive" and self.confidence is not None:
            raise ValueError("stop_rule predictive stops on `risk` (the chance that a vote "
                             "over max_n samples would differ), not on `confidence`")
        return self
