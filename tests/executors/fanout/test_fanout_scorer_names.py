"""Every scorer kind sees the same names: ``candidate``, ``answer``, ``index``, the run's
``inputs`` and the finished ``steps`` (the Scorer's documented contract)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio

NAMES = ("{{ inputs.topic }}|{{ steps.intro.output }}|{{ index }}|{{ answer }}|"
         "{{ candidate }}")
NAMES_REF = "${inputs.topic}|${steps.intro.output}|${index}|${answer}|${candidate}"


def _doc(kit: Any, scorer: dict[str, Any], reducer: str = "best_of_n") -> dict[str, Any]:
    join: dict[str, Any] = {"id": "best", "kind": "join", "of": "s", "reducer": reducer,
                            "extract": r"answer (\w)", "scorer": scorer}
    return kit.doc([
        {"id": "intro", "kind": "tool", "tool": "calc", "args": {"expression": "6 * 7"}},
        {"id": "s", "kind": "sample", "prompt": "Propose {{ steps.intro.output }}.", "n": 2,
         "after": ["intro"]},
        join], inputs={"topic": {"type": "string"}}, models={"default": {"backend": "fake"}})


def _backend(kit: Any) -> Any:
    return kit.FakeBackend(kit.by_pattern({
        "Propose": [kit.Reply("answer A"), kit.Reply("answer B")],
        r"\|1\|B\|": kit.Reply("9"), r"\|0\|A\|": kit.Reply("2")}))


def _rate(text: str) -> float:
    """A tool scorer: the score a judge would give (the names it saw, as one text)."""
    seen.append(text)
    return 9.0 if "|1|B|" in text else 2.0


seen: list[str] = []


async def _run(kit: Any, scorer: dict[str, Any], reward: Any = None,
               reducer: str = "best_of_n") -> Any:
    wf = kit.workflow(_doc(kit, scorer, reducer))
    wf.register_tool(_rate, name="rate")
    fake = _backend(kit)
    wf.register_backend("fake", lambda cfg: fake)
    if reward is not None:
        wf.register_backend("openai", lambda cfg: reward)
    return await kit.run(wf, {"topic": "tides"}), fake


@pytest.mark.parametrize("source", ["llm", "endpoint"])
async def test_a_judge_prompt_renders_inputs_steps_and_the_candidate(kit: Any,
                                                                     source: str) -> None:
    reward = _backend(kit)
    scorer: dict[str, Any] = {"prompt": NAMES}
    if source == "llm":
        scorer["llm"] = "default"
    else:
        scorer.update(endpoint="http://rm.local/v1", model="rm")
    r, fake = await _run(kit, scorer, reward if source == "endpoint" else None)
    assert r.result.ok, r.result.error
    judged = fake if source == "llm" else reward
    prompts = sorted(q.messages[-1]["content"] for q in judged.requests
                     if "Propose" not in q.messages[-1]["content"])
    assert prompts == ["tides|42|0|A|answer A", "tides|42|1|B|answer B"]
    assert r.result.output == "answer B"
    assert [s["score"] for s in r.step("best").meta["scores"]] == [2.0, 9.0]


async def test_a_tool_scorer_args_resolve_inputs_steps_and_the_candidate(kit: Any) -> None:
    seen.clear()
    r, _ = await _run(kit, {"tool": "rate", "args": {"text": NAMES_REF}})
    assert r.result.ok, r.result.error
    assert sorted(seen) == ["tides|42|0|A|answer A", "tides|42|1|B|answer B"]
    assert r.result.output == "answer B"


@pytest.mark.parametrize("source", ["llm", "endpoint"])
async def test_a_judge_prompt_that_fails_to_render_is_an_invalid_score_naming_it(
        kit: Any, source: str) -> None:
    scorer: dict[str, Any] = {"prompt": "Rate {{ candidate }}\n{{ steps.intro.output.a.b }}"}
    if source == "llm":
        scorer["llm"] = "default"
    else:
        scorer.update(endpoint="http://rm.local/v1", model="rm")
    r, _ = await _run(kit, scorer, _backend(kit))
    assert not r.result.ok
    # the same words for both: the endpoint's prompt is rendered as the judge step's is
    assert r.failed("best").error == (
        "join 'best' (best_of_n): no candidate of 's' got a score: " + "; ".join(
            f"{i}: step 'best[score{i}]' prompt template (template line 2): "
            "steps.intro.output.a: 'int object' has no attribute 'a'" for i in (0, 1)))
