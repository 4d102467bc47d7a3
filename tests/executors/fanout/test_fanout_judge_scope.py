"""What a join's judge sees (a map item's ``item``), and where its template errors are.

A judge of a map's items sees what the item's step saw (``inputs``, ``steps``, the map's
item variable and ``index``) plus its own candidate; a template a fan-out renders per
child (a judge's or check's prompt, a spawn child's prompt) that fails at run time is
named by the workflow's file:line, as every other step's template is.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed

pytestmark = pytest.mark.anyio

#: a map's answers and a judge that scores them by the question it asks about
SCRIPT = {
    r"^Answer 2\+2$": "4",
    r"^Answer 3\+3$": "7",
    r"^Judge 4 for 2\+2 #0$": "9",
    r"^Judge 7 for 3\+3 #1$": "2",
    r"^Check 4 for 2\+2$": "yes",
    r"^Check 7 for 3\+3$": "no",
}


def fake(kit: Any) -> Any:
    return kit.FakeBackend(kit.by_pattern({k: kit.Reply(v) for k, v in SCRIPT.items()}))


def prompts(backend: Any) -> list[str]:
    return sorted(r.messages[-1]["content"] for r in backend.requests)


def map_steps(item_var: str, join: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": "m", "kind": "map", "over": ["2+2", "3+3"], "as": item_var,
             "step": {"kind": "llm", "prompt": f"Answer {{{{ {item_var} }}}}"}},
            {"id": "best", "kind": "join", "of": "m", **join}]


@pytest.mark.parametrize("item_var", ["item", "q"])
async def test_a_judge_of_a_maps_items_sees_the_item(kit: Any, item_var: str) -> None:
    backend = fake(kit)
    r = await kit.run(kit.dump(kit.doc(map_steps(item_var, {
        "reducer": "best_of_n",
        "scorer": {"llm": "default",
                   "prompt": f"Judge {{{{ candidate }}}} for {{{{ {item_var} }}}} "
                             "#{{ index }}"}}))), fake=backend)
    assert r.result.ok, r.result.error
    assert r.result.output == "4"
    assert [s["score"] for s in r.step("best").meta["scores"]] == [9.0, 2.0]
    assert prompts(backend) == ["Answer 2+2", "Answer 3+3", "Judge 4 for 2+2 #0",
                                "Judge 7 for 3+3 #1"]


async def test_a_judge_of_a_maps_items_sees_the_item_in_the_sdk(kit: Any) -> None:
    wf = (Workflow("t")
          .map("m", ["2+2", "3+3"], {"kind": "llm", "prompt": "Answer {{ q }}"}, item_var="q")
          .join("best", "m", "best_of_n",
                scorer={"llm": "default", "prompt": "Judge {{ candidate }} for {{ q }} "
                                                    "#{{ index }}"}))
    backend = fake(kit)
    r = await kit.run(wf, fake=backend)
    assert r.result.ok, r.result.error
    assert r.result.output == "4"
    assert "Judge 7 for 3+3 #1" in prompts(backend)


async def test_a_first_finish_check_of_a_maps_items_sees_the_item(kit: Any) -> None:
    backend = fake(kit)
    r = await kit.run(kit.dump(kit.doc(map_steps("item", {
        "reducer": "first_finish", "policy": "ignore_failures",
        "check": {"llm": "default", "prompt": "Check {{ candidate }} for {{ item }}"}}))),
        fake=backend)
    assert r.result.ok, r.result.error
    assert r.step("best").output == "4"
    assert "Check 4 for 2+2" in prompts(backend)


def _right(answer: str, question: str) -> int:
    left, right = question.split("+")
    return 1 if int(answer) == int(left) + int(right) else 0


async def test_a_tool_scorer_of_a_maps_items_gets_the_item(kit: Any) -> None:
    wf = kit.workflow(kit.dump(kit.doc(map_steps("q", {
        "reducer": "best_of_n",
        "scorer": {"tool": "right", "args": {"answer": "${candidate}", "question": "${q}"}}}))))
    wf.register_tool(_right, name="right")
    r = await kit.run(wf, fake=fake(kit))
    assert r.result.ok, r.result.error
    assert [s["score"] for s in r.step("best").meta["scores"]] == [1.0, 0.0]


async def test_an_endpoint_judge_of_a_maps_items_sees_the_item(kit: Any) -> None:
    reward = kit.FakeBackend(kit.by_pattern({r"for 2\+2": kit.Reply("0.9"),
                                             r"for 3\+3": kit.Reply("0.1")}))
    wf = kit.workflow(kit.dump(kit.doc(map_steps("q", {
        "reducer": "best_of_n",
        "scorer": {"endpoint": "http://rm.local/v1", "model": "rm",
                   "prompt": "{{ candidate }} for {{ q }}"}}),
        models={"default": {"backend": "fake"}})))
    wf.register_backend("fake", lambda cfg: fake(kit))
    wf.register_backend("openai", lambda cfg: reward)
    r = await kit.run(wf)
    assert r.result.ok, r.result.error
    assert r.result.output == "4"
    assert prompts(reward) == ["4 for 2+2", "7 for 3+3"]


def test_a_judge_of_a_samples_children_has_no_item(kit: Any) -> None:
    """Only a map's items have one: elsewhere `item` is still an unknown name."""
    with pytest.raises(ValidationFailed) as info:
        kit.workflow(kit.dump(kit.doc([
            {"id": "s", "kind": "sample", "prompt": "p", "n": 2},
            {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
             "scorer": {"llm": "default", "prompt": "{{ candidate }} {{ item }}"}}]))).compile()
    assert "unknown name 'item'" in str(info.value)
    assert info.value.problems[0].line > 0


# -- run-time template errors name the workflow's file:line ------------------------------
JUDGED = """\
name: t
models:
  default: {backend: fake}
steps:
  - id: s
    kind: sample
    prompt: Propose.
    n: 2
  - id: best
    kind: join
    of: s
    reducer: REDUCER
    FIELD:
      SOURCE
      prompt: |
        Rate this.
        {{ candidate.foo.bar }}
"""


@pytest.mark.parametrize(("reducer", "field", "source"), [
    ("best_of_n", "scorer", "llm: default"),
    ("best_of_n", "scorer", "{endpoint: 'http://rm.local/v1', model: rm}"),
    ("first_finish", "check", "llm: default"),
])
async def test_a_judges_template_error_names_its_file_line(
        kit: Any, reducer: str, field: str, source: str) -> None:
    text = JUDGED.replace("REDUCER", reducer).replace("FIELD", field)
    if source.startswith("{"):
        text = text.replace("      SOURCE\n", "".join(
            f"      {k}: {v}\n" for k, v in (("endpoint", "http://rm.local/v1"),
                                              ("model", "rm"))))
    else:
        text = text.replace("SOURCE", source)
    wf = Workflow.from_yaml_text(text, name="flow.yaml")
    backend = kit.FakeBackend(kit.by_pattern({"Propose": kit.Reply("candidate A")}))
    wf.register_backend("fake", lambda cfg: backend)
    wf.register_backend("openai", lambda cfg: backend)
    r = await kit.run(wf)
    assert not r.result.ok
    # a check's failure is the child's: a candidate that did not pass
    error = r.failed("best").error if field == "scorer" else str(r.step("s").output)
    line = text.splitlines().index("        {{ candidate.foo.bar }}") + 1
    assert f"prompt template (flow.yaml:{line}): candidate.foo:" in error, error
    assert "template line" not in error


async def test_a_spawn_childs_template_error_names_its_file_line(kit: Any) -> None:
    wf = Workflow.from_yaml_text("""\
name: t
steps:
  - id: sp
    kind: spawn
    messages: [a, b]
    system: |
      Be brief.
      {{ context.x.y }}
""", name="flow.yaml")
    r = await kit.run(wf, fake=kit.FakeBackend(kit.by_pattern({})))
    assert not r.result.ok
    error = r.failed("sp[0]").error
    assert "system template (flow.yaml:8): context.x:" in error, error


@pytest.mark.parametrize("field", ["scorer", "check"])
def test_a_judges_template_error_at_validate_time_names_its_line(kit: Any, field: str) -> None:
    """Checked before the run: already the file's line, as every step's template."""
    text = (JUDGED.replace("REDUCER", "best_of_n" if field == "scorer" else "first_finish")
            .replace("FIELD", field).replace("SOURCE", "llm: default")
            .replace("{{ candidate.foo.bar }}", "{{ candidate | nosuch }}"))
    with pytest.raises(ValidationFailed) as info:
        Workflow.from_yaml_text(text, name="flow.yaml").compile()
    [problem] = info.value.problems
    assert (problem.file, problem.line) == ("flow.yaml", 17)
    assert "no filter named 'nosuch'" in problem.message
