"""`join`: scorers, joins over a map, and the errors a join can meet."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from orchestrator.errors import ValidationFailed

pytestmark = pytest.mark.anyio

CANDIDATES = {"Propose": [f"candidate {c}" for c in "ABCD"]}


def proposals(kit: Any, judge: dict[str, Any] | None = None) -> Any:
    table: dict[str, Any] = {"Propose": [kit.Reply(t) for t in CANDIDATES["Propose"]]}
    if judge:
        table.update({k: kit.Reply(v) for k, v in judge.items()})
    return kit.FakeBackend(kit.by_pattern(table))


async def test_best_of_n_with_an_llm_judge(kit: Any) -> None:
    fake = proposals(kit, {"Rate: candidate A": "3", "Rate: candidate B": "Score: 9/10",
                           "Rate: candidate C": "no idea", "Rate: candidate D": "7"})
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 4},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"llm": "default", "prompt": "Rate: {{ candidate }}",
                    "score_pattern": r"(\d+)(?:/10)?\s*$"}}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == "candidate B"
    meta = r.step("best").meta
    assert [s["score"] for s in meta["scores"]] == [3.0, 9.0, None, 7.0]
    assert meta["best"] == 1
    judged = [s for e in r.of_kind("graph_patched") for s in e.steps if "score" in s["id"]]
    assert {s["parent"] for s in judged} == {"best"} and len(judged) == 4


async def test_a_judge_score_is_the_first_number_of_its_reply(kit: Any) -> None:
    fake = proposals(kit, {"candidate A": "8/10", "candidate B": "Score: 7.5",
                           "candidate C": "I cannot tell", "candidate D": "7 out of 10"})
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 4},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"llm": "default"}}]), fake=fake)  # the default prompt and parse
    assert r.result.ok, r.result.error
    meta = r.step("best").meta
    assert [s["score"] for s in meta["scores"]] == [8.0, 7.5, None, 7.0]
    assert meta["scores"][2]["error"] == "invalid score: no number in 'I cannot tell'"
    assert r.result.output == "candidate A" and meta["best"] == 0


async def test_a_judge_that_never_gives_a_number_fails_the_join_clearly(kit: Any) -> None:
    fake = proposals(kit, {"candidate": "looks fine"})
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 2},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"llm": "default"}}]), fake=fake)
    assert not r.result.ok
    assert "no candidate of 's' got a score: 0: invalid score: no number in 'looks fine'" \
        in r.failed("best").error


async def test_best_of_n_with_a_reward_model_endpoint(kit: Any) -> None:
    seen: list[Any] = []
    reward = kit.FakeBackend(kit.by_pattern({"candidate (\\w)": kit.Reply("0.5")}))
    reward.script = lambda prompt, k: kit.Reply("0.9" if "candidate C" in prompt else "0.2")

    def reward_factory(cfg: Any) -> Any:
        seen.append(cfg)
        return reward

    wf = kit.workflow(kit.doc(
        [{"id": "s", "kind": "sample", "prompt": "Propose.", "n": 4},
         {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
          "scorer": {"endpoint": "http://rm.local/v1", "model": "skywork-rm",
                     "prompt": "{{ candidate }}"}}],
        models={"default": {"backend": "fake"}}))
    fake = proposals(kit)
    wf.register_backend("fake", lambda cfg: fake)
    wf.register_backend("openai", reward_factory)
    r = await kit.run(wf)
    assert r.result.ok, r.result.error
    assert r.result.output == "candidate C"
    assert seen[0].base_url == "http://rm.local/v1" and seen[0].model == "skywork-rm"
    assert r.step("best").usage.prompt_tokens == 4 * 5  # the join's own calls


async def test_a_scorer_that_fails_everywhere_is_an_error(kit: Any) -> None:
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 2},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"tool": "calc", "args": {"expression": "${candidate}"}}}]),
        fake=proposals(kit))
    assert not r.result.ok
    error = r.failed("best").error
    assert "no candidate of 's' got a score" in error and "calc" in error


async def test_an_extractor_that_finds_nothing_keeps_the_results(kit: Any) -> None:
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 3},
        {"id": "v", "kind": "join", "of": "s", "reducer": "vote",
         "extract": r"answer: (\d+)"}]), fake=proposals(kit))
    assert not r.result.ok
    failed = r.failed("v")
    # the extractor as the user wrote it (not repr()'s doubled backslashes), and a sample
    assert failed.error == ("join 'v' (vote): the extractor `answer: (\\d+)` found no answer "
                            "in any of the 3 succeeded children of 's' (child 0 wrote "
                            "'candidate A')")
    kept = json.loads(failed.raw)["kept"]
    assert kept == {"0": "candidate A", "1": "candidate B", "2": "candidate C"}
    assert r.step("s").output == ["candidate A", "candidate B", "candidate C"]


async def test_no_answer_in_outputs_cut_at_max_tokens_says_so(kit: Any) -> None:
    # the answer never came: each sample stopped at max_tokens before it
    cut = kit.FakeBackend(kit.by_pattern({"Propose": kit.Reply(
        "Let me think step by step about", finish_reason="length")}), supports_n=False)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 3, "max_tokens": 8},
        {"id": "v", "kind": "join", "of": "s", "reducer": "vote",
         "extract": r"answer: (\d+)"}]), fake=cut)
    assert r.failed("v").error.endswith(
        "; 3 of them stopped at max_tokens, so the answer may be cut off: raise 's''s "
        "max_tokens")
    assert r.step("s").meta["cut_short"] == [0, 1, 2]  # the trace says which


async def test_a_vote_with_no_message_to_count_says_so(kit: Any) -> None:
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": [], "step": {"kind": "llm", "prompt": "{{ item }}"}},
        {"id": "v", "kind": "join", "of": "m", "reducer": "vote"}]), fake=proposals(kit))
    assert not r.result.ok
    assert r.failed("v").error == \
        "join 'v' (vote): no child of 'm' gave a message to vote on (no children)"


async def test_vote_over_a_map_handles_failed_items_by_policy(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"bad": kit.Reply("x", fail=True),
                                           "q": kit.Reply("The answer is 12")}))
    steps = [{"id": "m", "kind": "map", "over": ["q1", "bad", "q2", "q3"],
              "step": {"kind": "llm", "prompt": "{{ item }}", "retry": {"max_attempts": 1}}},
             {"id": "v", "kind": "join", "of": "m", "reducer": "vote",
              "extract": r"answer is (\d+)", "normalize": ["number"]}]
    r = await kit.run(kit.doc(steps), fake=fake)
    assert r.result.ok, r.result.error  # the failed item is handled, not a run failure
    assert r.result.output == 12
    meta = r.step("v").meta
    assert meta["failed"][0]["child"] == "m[1]" and meta["votes"] == {"12": 3}
    assert r.step("m").output[1] is None
    strict = await kit.run(kit.doc([steps[0], {**steps[1], "policy": "require_all"}]),
                           fake=kit.FakeBackend(fake.script))
    assert "1 of 4 failed: m[1]" in strict.failed("v").error


async def test_first_finish_over_a_map_cancels_the_other_items(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"slow": kit.Reply("slow words here", 2.0),
                                           "fast": kit.Reply("fast", 0.02)}))
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": ["slow1", "fast", "slow2"],
         "step": {"kind": "llm", "prompt": "{{ item }}"}},
        {"id": "ff", "kind": "join", "of": "m", "reducer": "first_finish"}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.step("ff").output == "fast"
    assert sorted(e.step_id for e in r.cancelled()) == ["m[0]", "m[2]"]
    assert fake.cancelled == 2
    assert r.result.duration_s < 1.0
    meta = r.step("ff").meta
    assert meta["winner"] == 1 and meta["fanout"]["stopped"] == "first_finish"
    started = {e.step_id: e.ts for e in r.of_kind("step_started")}
    assert started["ff"] <= min(started[f"m[{i}]"] for i in range(3)) + 0.5


async def test_llm_items_cancelled_by_first_finish_record_the_tokens_they_used(
        kit: Any, engines: list[Any]) -> None:
    """Plain `llm` steps (a map's items) are cancelled at the engine, and the trace
    records exactly what the engine had spent on them, also on an item cancelled before
    its first chunk came (the engine decodes ``a`` in pieces of 150 tokens)."""
    words = {"a": 1200, "b": 40, "c": 200, "d": 250}
    rules = [{"match": f"^{k}$", "output": "w " * (n * 2)} for k, n in words.items()]
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": list(words),
         "step": {"kind": "llm", "prompt": "{{ item }}", "max_tokens": 1024}},
        {"id": "ff", "kind": "join", "of": "m", "reducer": "first_finish"}],
        models={"default": {"backend": "simulated", "options": {
            "time_scale": 0.2, "output_tokens": "text", "responses": rules}}}))
    assert r.result.ok, r.result.error
    assert r.step("ff").meta["winner"] == 1
    cancelled = r.cancelled()
    assert sorted(e.step_id for e in cancelled) == ["m[0]", "m[2]", "m[3]"]
    assert all(e.usage.completion_tokens > 0 for e in cancelled)
    stats = engines[0].stats
    assert stats.cancelled == 3
    recorded = sum(e.usage.prompt_tokens + e.usage.completion_tokens
                   for e in [*cancelled, r.step("m[1]")])
    assert recorded == stats.prompt_tokens + stats.completion_tokens
    fanout = r.step("ff").meta["fanout"]
    assert fanout["cancelled_tokens"]["total_tokens"] == sum(
        e.usage.prompt_tokens + e.usage.completion_tokens for e in cancelled)


async def test_adaptive_vote_over_a_map_stops_early(kit: Any) -> None:
    fake = kit.FakeBackend(lambda prompt, k: kit.Reply("answer 5", 0.01 * int(prompt)))
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": list(range(1, 13)), "concurrency": 2,
         "step": {"kind": "llm", "prompt": "{{ item }}"}},
        {"id": "a", "kind": "join", "of": "m", "reducer": "adaptive_vote", "min_n": 3,
         "extract": r"answer (\d+)"}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.step("a").output == "5"
    assert r.step("a").meta["samples_used"] < 12
    assert len(fake.requests) < 12


@pytest.mark.parametrize(("steps", "message", "hint"), [
    ([{"id": "t", "kind": "tool", "tool": "calc", "args": {"expression": "1"}},
      {"id": "j", "kind": "join", "of": "t"}],
     "join 'j' names 't', a tool step, not a fan-out", "map, spawn or sample"),
    ([{"id": "j", "kind": "join", "of": "nowhere"}], "unknown step 'nowhere'", ""),
    ([{"id": "s", "kind": "sample", "prompt": "p"},
      {"id": "a", "kind": "join", "of": "s", "reducer": "first_finish"},
      {"id": "b", "kind": "join", "of": "s", "reducer": "adaptive_vote"}],
     "fan-out 's' already has the 'a' join", "at most one"),
    # a vote beside a first_finish join voted on the one sample left uncancelled
    ([{"id": "s", "kind": "sample", "prompt": "p", "n": 4},
      {"id": "ff", "kind": "join", "of": "s", "reducer": "first_finish"},
      {"id": "v", "kind": "join", "of": "s", "reducer": "vote"}],
     "joins 'v' and 'ff' both join fan-out 's', and 'ff' (first_finish) cancels the children "
     "it does not need: 'v' would reduce only the children 'ff' left",
     "give 's' one join, or fan out again for 'v'"),
    ([{"id": "m", "kind": "map", "over": [1, 2], "step": {"kind": "llm", "prompt": "p"}},
      {"id": "all", "kind": "join", "of": "m", "reducer": "concat"},
      {"id": "av", "kind": "join", "of": "m", "reducer": "adaptive_vote"}],
     "joins 'all' and 'av' both join fan-out 'm', and 'av' (adaptive_vote) starts only the "
     "children it needs", "fan out again for 'all'"),
    ([{"id": "s", "kind": "sample", "prompt": "p"},
      {"id": "j", "kind": "join", "of": "s", "reducer": "best_of_n"}],
     "best_of_n needs a `scorer`", ""),
    ([{"id": "s", "kind": "sample", "prompt": "p"},
      {"id": "j", "kind": "join", "of": "s", "extract": "(unclosed"}],
     "is not a regular expression", ""),
    ([{"id": "s", "kind": "sample", "prompt": "p"},
      {"id": "j", "kind": "join", "of": "s", "reducer": "vote", "check": {"tool": "calc"}}],
     "`check` is used by first_finish only", ""),
    ([{"id": "s", "kind": "sample", "prompt": "p"},
      {"id": "j", "kind": "join", "of": "s", "reducer": "adaptive_vote", "risk": 0.1}],
     "`risk` is used by adaptive_vote with `stop_rule: predictive` only", "stop_rule beta"),
    ([{"id": "s", "kind": "sample", "prompt": "p"},
      {"id": "j", "kind": "join", "of": "s", "reducer": "adaptive_vote",
       "stop_rule": "predictive", "risk": 1}],
     "risk", "less than 1"),
    ([{"id": "s", "kind": "sample", "prompt": "p"},
      {"id": "j", "kind": "join", "of": "s", "reducer": "adaptive_vote",
       "stop_rule": "predictive", "confidence": 0.9}],
     "stop_rule predictive stops on `risk`", ""),
])
def test_bad_joins_are_located_errors(kit: Any, steps: list[dict[str, Any]], message: str,
                                      hint: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        kit.workflow(kit.dump(kit.doc(steps))).compile()
    text = str(info.value)
    assert message in text and hint in text
    assert all(p.line > 0 for p in info.value.problems)


def _huge_for_b(text: str) -> Any:
    """A scorer tool: 10**400 (no float holds it) for candidate B, 1 for the others."""
    return 10**400 if text.endswith("B") else 1


def _huge_for_a(text: str) -> Any:
    return 10**400 if text.endswith("A") else 1


async def test_a_score_too_large_for_a_float_is_an_invalid_score(kit: Any) -> None:
    wf = kit.workflow(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 3},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"tool": "huge", "args": {"text": "${candidate}"}}}]))
    wf.register_tool(_huge_for_b, name="huge")
    r = await kit.run(wf, fake=proposals(kit))
    assert r.result.ok, r.result.error
    meta = r.step("best").meta
    assert [s["score"] for s in meta["scores"]] == [1.0, None, 1.0]
    assert meta["scores"][1]["error"].startswith("invalid score: not a finite number")
    assert r.result.output == "candidate A"


async def test_a_check_scoring_too_large_for_a_float_rejects_the_candidate(kit: Any) -> None:
    wf = kit.workflow(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 2},
        {"id": "first", "kind": "join", "of": "s", "reducer": "first_finish",
         "check": {"tool": "huge", "args": {"text": "${candidate}"}, "threshold": 1}}]))
    wf.register_tool(_huge_for_a, name="huge")
    r = await kit.run(wf, fake=proposals(kit))
    assert r.result.ok, r.result.error
    assert r.result.output == "candidate B"


async def test_best_of_n_over_a_fanout_without_children_says_so(kit: Any) -> None:
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "spawn", "messages": []},
        {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
         "scorer": {"tool": "calc", "args": {"expression": "1"}}}]))
    assert not r.result.ok
    assert "join 'best' (best_of_n): no child of 's' gave a candidate to score " \
           "(no children)" in r.failed("best").error


# (x+x+)+y backtracks exponentially on a run of x with no y: Python's re never returns
BACKTRACKS = r"(?P<answer>(?:x+x+)+y)"


async def test_an_extract_pattern_that_backtracks_fails_the_join_in_time(
        kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.spec import patterns

    monkeypatch.setattr(patterns, "MATCH_TIMEOUT_S", 0.05)
    fake = kit.FakeBackend(kit.by_pattern({"Think": [kit.Reply("x" * 3000),
                                                     kit.Reply("answer y")]}))
    with anyio.fail_after(30):
        r = await kit.run(kit.doc([
            {"id": "s", "kind": "sample", "prompt": "Think.", "n": 2},
            {"id": "v", "kind": "join", "of": "s", "reducer": "vote",
             "extract": BACKTRACKS}]), fake=fake)
    assert not r.result.ok
    assert r.step("s").kind == "step_succeeded"  # the samples are kept
    error = r.failed("v").error or ""
    assert "the pattern" in error and "took over 0.05 s" in error and "3,000 char" in error


async def test_a_score_pattern_that_backtracks_is_an_invalid_score(
        kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.spec import patterns

    monkeypatch.setattr(patterns, "MATCH_TIMEOUT_S", 0.05)
    fake = proposals(kit, {"Rate: candidate A": "x" * 3000, "Rate: candidate B": "7",
                           "Rate: candidate C": "8", "Rate: candidate D": "2"})
    with anyio.fail_after(30):
        r = await kit.run(kit.doc([
            {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 4},
            {"id": "best", "kind": "join", "of": "s", "reducer": "best_of_n",
             "scorer": {"llm": "default", "prompt": "Rate: {{ candidate }}",
                        "score_pattern": r"((?:x+x+)+y|\d+)"}}]), fake=fake)
    assert r.result.ok, r.result.error
    scores = r.step("best").meta["scores"]
    assert [s["score"] for s in scores] == [None, 7.0, 8.0, 2.0]
    assert "took over 0.05 s" in scores[0]["error"]
    assert r.result.output == "candidate C"


def _plan(item: int) -> dict[str, Any]:
    """A tool giving structured answers: items 1 and 3 agree (2 and 2.0 are equal)."""
    return {"route": ["a", "b"] if item != 2 else ["a", "c"], "cost": 2 if item != 3 else 2.0}


async def test_a_vote_over_structured_or_numeric_outputs_gives_the_value(kit: Any) -> None:
    """A vote with no `extract` over outputs that are JSON values returns the winning
    value itself, not its JSON text; equal values (2 and 2.0) vote alike."""
    wf = kit.workflow(kit.doc([
        {"id": "m", "kind": "map", "over": [1, 2, 3],
         "step": {"kind": "tool", "tool": "plan", "args": {"item": "${item}"}}},
        {"id": "v", "kind": "join", "of": "m", "reducer": "vote"}]))
    wf.register_tool(_plan, name="plan")
    r = await kit.run(wf)
    assert r.result.ok, r.result.error
    assert r.result.output == {"route": ["a", "b"], "cost": 2}
    assert r.step("v").meta["votes"] == {'{"cost": 2, "route": ["a", "b"]}': 2,
                                         '{"cost": 2, "route": ["a", "c"]}': 1}
    numbers = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": ["14 / 2", "2 * 3", "3 + 4"],
         "step": {"kind": "tool", "tool": "calc", "args": {"expression": "${item}"}}},
        {"id": "v", "kind": "join", "of": "m", "reducer": "vote"}]))
    assert numbers.result.ok, numbers.result.error
    assert numbers.result.output == 7 and isinstance(numbers.result.output, int | float)
    assert numbers.step("v").meta["votes"] == {"7": 2, "6": 1}


def _route_score(plan: dict[str, Any]) -> float:
    return 10.0 - float(plan["cost"]) * len(plan["route"])


async def test_a_tool_scorer_gets_a_structured_candidate_as_it_is(kit: Any) -> None:
    wf = kit.workflow(kit.doc([
        {"id": "m", "kind": "map", "over": [1, 2, 3],
         "step": {"kind": "tool", "tool": "plan", "args": {"item": "${item}"}}},
        {"id": "b", "kind": "join", "of": "m", "reducer": "best_of_n",
         "scorer": {"tool": "route_score", "args": {"plan": "${candidate}"}}}]))
    wf.register_tool(_plan, name="plan")
    wf.register_tool(_route_score, name="route_score")
    r = await kit.run(wf)
    assert r.result.ok, r.result.error
    assert [s["score"] for s in r.step("b").meta["scores"]] == [6.0, 6.0, 6.0]
    assert r.result.output == {"route": ["a", "b"], "cost": 2}
