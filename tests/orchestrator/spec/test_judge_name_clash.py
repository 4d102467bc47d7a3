"""A map whose item variable (its ``as:``) is a name a join's judge reserves for its own
candidate (``candidate``, ``answer``, ``index``) is refused at the map's ``as:`` line when
the judge's prompt or args read that name: the judge's own value silently hid the item it
judges. A judge that does not read the name (its defaults included) loses nothing."""

from __future__ import annotations

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_text
from orchestrator.spec.kinds_fanout import JUDGE_NAMES

HEAD = """\
name: w
models:
  default: {backend: simulated}
steps:
  - id: m
    kind: map
    over: [a, b]
    as: %s
    step: {kind: llm, prompt: "Q {{ %s }}"}
  - id: j
    kind: join
    of: m
"""

JUDGES = {
    "scorer": "    reducer: best_of_n\n    scorer: {llm: default, prompt: \"{{ candidate }}\"}\n",
    "tool scorer": "    reducer: best_of_n\n    scorer: {tool: calc, args: {expression: "
                   "\"${answer}\"}}\n",
    "check": "    reducer: first_finish\n    check: {llm: default, prompt: \"{{ answer }}\"}\n",
}


def _problems(text: str) -> list[tuple[int, str, str]]:
    return [(p.line, p.message, p.hint) for p in validate_text(text, "w.yaml")]


#: the reserved name each judge of JUDGES reads
READS = {"scorer": "candidate", "tool scorer": "answer", "check": "answer"}


@pytest.mark.parametrize("judge", sorted(JUDGES))
def test_a_maps_item_named_as_a_name_its_judge_reads_is_refused(judge: str) -> None:
    field, name = judge.split()[-1], READS[judge]
    assert _problems(HEAD % (name, name) + JUDGES[judge]) == [(
        8, f"map 'm': `as: {name}` is a name the {field} of join 'j' reserves (`candidate`, "
           "`answer`, `index` are the judged candidate's own), so the judge would not see "
           "the map's item",
        "give the item another name, e.g. `as: item`")]


@pytest.mark.parametrize("judge", sorted(JUDGES))
def test_a_maps_item_of_another_name_is_seen_by_its_judge(judge: str) -> None:
    assert _problems(HEAD % ("q", "q") + JUDGES[judge]) == []


@pytest.mark.parametrize(("name", "judge"), [(name, judge) for judge in sorted(JUDGES)
                                              for name in JUDGE_NAMES if name != READS[judge]])
def test_a_reserved_name_the_judge_does_not_read_is_no_clash(name: str, judge: str) -> None:
    assert _problems(HEAD % (name, name) + JUDGES[judge]) == []


def test_an_answer_item_with_a_candidate_scorer_passes() -> None:
    """The reported case: a map over three items `as: answer` with a best_of_n join whose
    LLM scorer reads only `candidate` ran before the clash check, and runs again."""
    text = ("name: w\nmodels:\n  default: {backend: simulated}\nsteps:\n"
            "  - id: m\n    kind: map\n    over: [a, b, c]\n    as: answer\n"
            "    step: {kind: llm, prompt: \"Q {{ answer }}\"}\n"
            "  - id: j\n    kind: join\n    of: m\n    reducer: best_of_n\n"
            "    scorer: {llm: default, prompt: \"Score this: {{ candidate }}\"}\n")
    assert _problems(text) == []


@pytest.mark.parametrize("name", JUDGE_NAMES)
@pytest.mark.parametrize("scorer", ["{tool: calc}", "{llm: default}"])
def test_a_judges_defaults_are_its_own_names(name: str, scorer: str) -> None:
    """The default tool args (`text: ${answer}`) and the default judge prompt (`{{ candidate
    }}`) mean the judge's own candidate, whatever the map's item is called."""
    assert _problems(HEAD % (name, name) + f"    reducer: best_of_n\n    scorer: {scorer}\n") == []


def test_a_join_without_a_judge_reserves_no_name() -> None:
    assert _problems(HEAD % ("candidate", "candidate") + "    reducer: vote\n") == []


def test_each_judging_join_is_named() -> None:
    text = (HEAD % ("answer", "answer") + JUDGES["tool scorer"]
            + "  - id: k\n    kind: join\n    of: m\n" + JUDGES["check"])
    assert [(line, msg.split(" reserves")[0]) for line, msg, _ in _problems(text)] == [
        (8, "map 'm': `as: answer` is a name the scorer of join 'j'"),
        (8, "map 'm': `as: answer` is a name the check of join 'k'"),
        (18, "joins 'j' and 'k' both join fan-out 'm', and 'k' (first_finish) cancels the "
             "children it does not need: 'j' would reduce only the children 'k' left")]


def test_the_sdk_refuses_the_clash_too() -> None:
    wf = (Workflow("t")
          .map("m", ["2+2"], {"kind": "llm", "prompt": "Answer {{ candidate }}"},
               item_var="candidate")
          .join("best", "m", "best_of_n", scorer={"llm": "default", "prompt": "{{ candidate }}"}))
    with pytest.raises(ValidationFailed) as info:
        wf.compile()
    assert "`as: candidate` is a name the scorer of join 'best' reserves" in str(info.value)
