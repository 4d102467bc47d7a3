"""`sample` steps: one request or n, first-finish with cancellation, adaptive vote, budgets."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import ValidationFailed

pytestmark = pytest.mark.anyio

VOTE = {"id": "v", "kind": "join", "of": "s", "reducer": "vote",
        "extract": r"answer (\d+)", "normalize": ["number"]}


def sim(**options: Any) -> dict[str, Any]:
    return {"default": {"backend": "simulated", "options": {"time_scale": 0, **options}}}


def answering(kit: Any, answers: tuple[int, ...], **options: Any) -> Any:
    """A fake engine whose successive replies to "Q" are `answer A` for each A in turn."""
    return kit.FakeBackend(kit.by_pattern({"Q": [kit.Reply(f"answer {a}") for a in answers]}),
                           **options)


async def adaptive(kit: Any, answers: tuple[int, ...], n: int, **join: Any) -> tuple[Any, Any]:
    """Run `n` samples (one request each) joined by adaptive_vote with the `join` settings."""
    fake = answering(kit, answers, supports_n=False)
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": n},
                               {**VOTE, "reducer": "adaptive_vote", **join}]), fake=fake)
    return r, fake


async def test_n_samples_are_one_request_where_the_backend_can(kit: Any) -> None:
    fake = answering(kit, (3, 4, 4, 5, 4, 9))
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": 6,
                                "temperature": 0.9}, VOTE]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == 4
    assert [q.n for q in fake.requests] == [6]  # one request, LLMRequest.n
    assert r.step("s").meta["mode"] == "shared"
    assert r.step("s").output == [f"answer {a}" for a in (3, 4, 4, 5, 4, 9)]
    assert r.step("v").meta["votes"] == {"3": 1, "4": 3, "5": 1, "9": 1}


async def test_without_n_support_each_sample_is_a_request_with_its_own_seed(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("answer 1")}), supports_n=False)
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": 4,
                                "seed": 10}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == ["answer 1"] * 4
    assert sorted(q.seed for q in fake.requests) == [10, 11, 12, 13]
    assert {q.n for q in fake.requests} == {1}
    patched = [s for e in r.of_kind("graph_patched") for s in e.steps]
    assert sorted(s["id"] for s in patched) == ["s[0]", "s[1]", "s[2]", "s[3]"]
    assert {s["parent"] for s in patched} == {"s"}


async def test_a_server_that_ignores_n_is_topped_up(kit: Any) -> None:
    class OneOnly(kit.FakeBackend):  # type: ignore[misc, name-defined]
        async def complete(self, request: Any) -> Any:
            response = await super().complete(request)
            response.texts = response.texts[:1]
            return response

    fake = OneOnly(kit.by_pattern({"Q": [kit.Reply(f"t{i}") for i in range(6)]}))
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": 3}]),
                      fake=fake)
    assert r.result.ok, r.result.error
    # each reply consumes n scripted answers: t0 (of t0-t2), t3 (of t3-t4), then t5
    assert r.result.output == ["t0", "t3", "t5"]
    assert [q.n for q in fake.requests] == [3, 2, 1]
    assert r.step("s[0:3]").meta["requests"] == 3


async def test_first_finish_over_8_uses_far_fewer_tokens_than_waiting_for_all(
        kit: Any, engines: list[Any]) -> None:
    """On the simulated engine, decode time follows the text; the losers stop at once."""
    lengths = [300, 90, 420, 260, 500, 350, 380, 280]
    texts = [" ".join(["step"] * (n * 4 // 5)) + f" answer {i}" for i, n in enumerate(lengths)]
    models = sim(time_scale=0.25, output_tokens="text", capacity=8,
                 responses=[{"match": "race", "sequence": texts}])

    async def spent(reducer: str) -> tuple[Any, int]:
        r = await kit.run(kit.doc(
            [{"id": "s", "kind": "sample", "prompt": "race", "n": 8, "max_tokens": 1024},
             {"id": "j", "kind": "join", "of": "s", "reducer": reducer}], models=models))
        assert r.result.ok, r.result.error
        stats = engines[-1].stats
        return r, stats.prompt_tokens + stats.completion_tokens

    first, first_tokens = await spent("first_finish")
    every, all_tokens = await spent("concat")
    assert first.result.output == texts[1]  # the shortest finishes first
    assert first_tokens < 0.5 * all_tokens, (first_tokens, all_tokens)
    assert engines[0].stats.cancelled == 7
    # the trace: 7 cancelled steps with the tokens they had used, in the run's usage
    cancelled = first.cancelled()
    assert sorted(e.step_id for e in cancelled) == [f"s[{i}]" for i in range(8) if i != 1]
    assert all(e.usage.completion_tokens > 0 for e in cancelled)
    partial = sum(e.usage.prompt_tokens + e.usage.completion_tokens for e in cancelled)
    meta = first.step("s").meta
    assert meta["stopped"] == "first_finish" and meta["winner"] == 1
    assert meta["cancelled_tokens"]["total_tokens"] == partial
    assert first.result.usage.total == meta["tokens"]["total_tokens"]
    assert first.result.usage.total < 0.5 * every.result.usage.total
    assert [e["status"] for e in first.step("s").output if isinstance(e, dict)] == \
        ["cancelled"] * 7


async def test_first_finish_takes_the_first_that_passes_its_check(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": [
        kit.Reply("no final answer", 0.01), kit.Reply("Answer: 2", 0.2),
        kit.Reply("Answer: 3", 1.0), kit.Reply("Answer: 4", 1.2)]}), supports_n=True)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 4},
        {"id": "j", "kind": "join", "of": "s", "reducer": "first_finish",
         "check": {"tool": "extract", "args": {"text": "${candidate}",
                                               "pattern": r"Answer: \d+"}}}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == "Answer: 2"
    out = r.step("s").output
    assert out[0]["status"] == "rejected" and out[0]["output"] == "no final answer"
    assert [e["status"] for e in out[2:]] == ["cancelled", "cancelled"]
    assert fake.cancelled == 2
    checks = r.step("s").meta["checks"]
    assert [c["index"] for c in checks] == [0, 1]
    patched = {s["id"]: s["parent"] for e in r.of_kind("graph_patched") for s in e.steps}
    assert patched["s[check0]"] == "s" and patched["s[check1]"] == "s"


async def test_no_child_passing_the_check_is_a_clear_error(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("nope")}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 3},
        {"id": "j", "kind": "join", "of": "s", "reducer": "first_finish",
         "check": {"tool": "extract", "args": {"text": "${candidate}", "pattern": "yes"}}}]),
        fake=fake)
    assert not r.result.ok
    assert "no child of 's' finished and passed the check" in r.failed("j").error
    assert [e["status"] for e in r.step("s").output] == ["rejected"] * 3


async def test_adaptive_vote_stops_when_confident_and_records_samples_used(kit: Any) -> None:
    fake = answering(kit, (7, 2, 7, 7, 7, 7, 7, 7))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 16},
        {**VOTE, "reducer": "adaptive_vote", "stop_rule": "share", "batch": 2, "min_n": 3,
         "confidence": 0.8}]),
        fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == 7
    meta = r.step("s").meta
    # round 1: max(batch, min_n) = 3 samples (7 2 7: 2/3 < 0.8), round 2: 2 more (4/5)
    assert meta["samples_used"] == 5 and meta["stopped"] == "confident"
    assert meta["rounds"] == 2
    assert [q.n for q in fake.requests] == [2, 1, 2]  # a batch shares a request
    assert r.step("v").meta["samples_used"] == 5 and r.step("v").meta["share"] == 0.8
    unstarted = [e for e in r.step("s").output
                 if isinstance(e, dict) and e["status"] == "not_started"]
    assert len(unstarted) == 11
    assert {e["error"] for e in unstarted} == {
        "not needed: adaptive_vote was confident of its answer"}


async def test_adaptive_vote_keeps_sampling_while_answers_disagree(kit: Any) -> None:
    r, fake = await adaptive(kit, (1, 2, 3, 1, 2, 1, 1, 1, 1, 1, 1, 1), 10, stop_rule="share",
                             batch=1, min_n=3, confidence=0.6)
    assert r.result.output == 1
    meta = r.step("s").meta
    # shares after each sample: 1/3, 2/4, 2/5, 3/6 = .5, 4/7 = .57, 5/8 = .625 -> stop at 8
    assert meta["samples_used"] == 8 and meta["rounds"] == 6
    assert len(fake.requests) == 8


async def test_adaptive_vote_stops_by_default_on_the_beta_criterion(kit: Any) -> None:
    r, _ = await adaptive(kit, (7, 2, 7, 7, 7, 7, 7, 7, 7, 7), 16)
    assert r.result.output == 7
    meta = r.step("s").meta
    # P(leader beats runner-up): 2-1 .69, 3-1 .81, 4-1 .89, 5-1 .94, 6-1 .96 >= 0.95
    assert meta["samples_used"] == 7 and meta["stopped"] == "confident"
    assert (meta["stop_rule"], meta["confidence"], meta["stop_value"]) == ("beta", 0.95, 0.9648)


async def test_adaptive_vote_stops_on_the_predictive_risk(kit: Any) -> None:
    r, fake = await adaptive(kit, (7, 2, 7, 7, 7, 7, 7, 7, 7, 7), 16, stop_rule="predictive")
    assert r.result.output == 7
    meta = r.step("s").meta
    # P(a vote over 16 would pick 2): 2-1 with 13 left .25, 3-1 .115, 4-1 with 11 .045
    # (the beta rule needs 7 samples on the same answers)
    assert meta["samples_used"] == 5 and meta["stopped"] == "confident"
    assert (meta["stop_rule"], meta["risk"], meta["stop_value"]) == ("predictive", 0.05, 0.0449)
    assert len(fake.requests) == 5


async def test_adaptive_vote_stops_when_the_rest_cannot_change_the_winner(kit: Any) -> None:
    r, _ = await adaptive(kit, (1, 2, 1, 1, 1, 3), 6, stop_rule="share", confidence=1.0)
    assert r.result.output == 1
    meta = r.step("s").meta
    # never unanimous, but after 1 2 1 1 1 (4-1) the one sample left cannot change it
    assert meta["samples_used"] == 5 and meta["stopped"] == "decided"


async def test_token_budget_bounds_the_samples_and_the_trace_shows_the_spend(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("answer 5")}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 8, "max_tokens": 10,
         "budget_tokens": 35, "concurrency": 1}, VOTE]), fake=fake)
    assert r.result.ok, r.result.error
    meta = r.step("s").meta
    # each request reserves 10 + 1 prompt tokens and spends 5 + 2: 4 fit in 35
    assert meta["samples_used"] == 4 and meta["stopped"] == "budget"
    assert meta["tokens"]["total_tokens"] == 28 <= meta["budget_tokens"] == 35
    assert [e["error"] for e in r.step("s").output[4:]] == ["token budget reached"] * 4
    assert r.step("v").meta["valid"] == 4


async def test_first_finish_cannot_share_a_request(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 2, "requests": "shared"},
        {"id": "j", "kind": "join", "of": "s", "reducer": "first_finish"}]), fake=fake)
    assert not r.result.ok
    assert "needs `requests: separate`" in r.failed("s").error


async def test_failed_samples_without_a_join_fail_the_step_and_keep_the_others(
        kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": [kit.Reply("a"), kit.Reply("b", fail=True),
                                                 kit.Reply("c")]}), supports_n=False)
    r = await kit.run(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q?", "n": 3,
                                "retry": {"max_attempts": 1}}]), fake=fake)
    assert not r.result.ok
    failed = r.failed("s")
    assert "1 of 3 samples failed" in failed.error
    assert '"a"' in failed.raw and '"c"' in failed.raw


@pytest.mark.parametrize("bad", [{"n": 0}, {"n": 257}, {"budget_tokens": 0}])
def test_n_out_of_range_is_a_validation_error(kit: Any, bad: dict[str, Any]) -> None:
    text = kit.dump(kit.doc([{"id": "s", "kind": "sample", "prompt": "Q", **bad}]))
    with pytest.raises(ValidationFailed) as info:
        kit.workflow(text)
    problem = info.value.problems[0]
    assert problem.line == 6 and next(iter(bad)) in problem.message  # the offending key


async def test_first_m_votes_among_the_first_m_to_finish_and_cancels_the_rest(kit: Any
                                                                              ) -> None:
    """short-m@k (Hassid et al. 2025): stop once m samples finished, vote among them."""
    fake = kit.FakeBackend(kit.by_pattern({"Q": [
        kit.Reply("answer 7", 0.05), kit.Reply("answer 5", 0.1), kit.Reply("answer 7", 0.15),
        kit.Reply("answer 5", 1.0), kit.Reply("answer 5", 1.1), kit.Reply("answer 5", 1.2)]}),
        supports_n=True)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 6},
        {**VOTE, "id": "j", "reducer": "first_finish", "first": 3}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == 7  # the full vote would say 5: only the first 3 count
    assert fake.cancelled == 3
    meta = r.step("j").meta
    assert meta["winners"] == [0, 1, 2] and meta["votes"] == {"7": 2, "5": 1}
    assert r.step("s").meta["winners"] == [0, 1, 2]
    assert [e["status"] for e in r.step("s").output[3:]] == ["cancelled"] * 3


async def test_first_m_over_a_map_and_its_validation(kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"item 0": kit.Reply("answer 1", 0.3),
                                           "item 1": kit.Reply("answer 2", 0.05),
                                           "item 2": kit.Reply("answer 2", 0.1),
                                           "item 3": kit.Reply("answer 1", 2.0)}))
    r = await kit.run(kit.doc([
        {"id": "m", "kind": "map", "over": [0, 1, 2, 3],
         "step": {"kind": "llm", "prompt": "item {{ item }}"}},
        {"id": "j", "kind": "join", "of": "m", "reducer": "first_finish", "first": 2,
         "extract": r"answer (\d+)", "normalize": ["number"]}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.step("j").output == 2 and r.step("j").meta["winners"] == [1, 2]
    assert fake.cancelled == 2
    from pydantic import ValidationError

    from orchestrator.spec.kinds_fanout import JoinStep

    with pytest.raises(ValidationError, match="`first` is used by first_finish only"):
        JoinStep.model_validate({**VOTE, "first": 2})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        JoinStep.model_validate({**VOTE, "reducer": "first_finish", "first": 0})


async def test_a_budget_too_small_for_one_request_fails_the_step_saying_what_it_needs(
        kit: Any) -> None:
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("answer 5")}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 4, "max_tokens": 10,
         "budget_tokens": 8}, VOTE]), fake=fake)
    assert not r.result.ok and not fake.requests
    failed = r.failed("s")
    assert failed.error_type == "BudgetExceeded"
    assert failed.error == (
        "sample 's': budget_tokens 8 is too small to start any child: one child needs about "
        "11 tokens (max_tokens 10 + about 1 of prompt); raise budget_tokens to at least 11 "
        "or lower max_tokens")
    assert "budget_tokens 8 is too small" in (r.result.error or "")


async def test_the_requests_of_one_fanout_share_a_prefix_key(kit: Any) -> None:
    fake = answering(kit, (1, 2, 3), supports_n=False)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 3}, VOTE,
        {"id": "sp", "kind": "spawn", "messages": ["a", "b"], "context": "shared context"},
        {"id": "j", "kind": "join", "of": "sp"}]), fake=fake)
    assert r.result.ok, r.result.error
    run = r.result.run_id
    keys = {q.step_id: q.prefix_key for q in fake.requests}
    assert keys == {"s[0]": f"{run}/s", "s[1]": f"{run}/s", "s[2]": f"{run}/s",
                    "sp[0]": f"{run}/sp", "sp[1]": f"{run}/sp"}


class _OneSamplePerRequest:
    """A simulated engine that cannot give n > 1 samples in one request; records the
    prompt tokens found in its prefix cache by each request (they run one at a time)."""

    supports_n = False

    def __init__(self, config: Any) -> None:
        from executors.llm.simulated import SimulatedBackend

        self.engine = SimulatedBackend(config)
        self.cached: list[int] = []
        self.prompt_tokens: list[int] = []
        self.keys: list[str | None] = []

    @property
    def default_concurrency(self) -> int:
        return 1

    async def complete(self, request: Any) -> Any:
        raise AssertionError("single samples are streamed")

    async def stream(self, request: Any) -> Any:
        before = self.engine.stats.cached_prompt_tokens
        self.keys.append(request.prefix_key)
        async for chunk in self.engine.stream(request):
            if chunk.final is not None:
                self.prompt_tokens.append(chunk.final.prompt_tokens)
                self.cached.append(self.engine.stats.cached_prompt_tokens - before)
            yield chunk

    async def aclose(self) -> None:
        await self.engine.aclose()


async def test_separate_requests_of_one_sample_reuse_the_cached_prompt(kit: Any) -> None:
    engines: list[_OneSamplePerRequest] = []

    def factory(config: Any) -> _OneSamplePerRequest:
        engines.append(_OneSamplePerRequest(config))
        return engines[-1]

    long_prompt = "Consider the following puzzle carefully. " * 20 + "Q?"
    wf = kit.workflow(kit.doc(
        [{"id": "s", "kind": "sample", "prompt": long_prompt, "n": 4, "max_tokens": 8}],
        models={"default": {"backend": "one-per-request", "options": {
            "time_scale": 0, "prefix_caching": True}}}))
    wf.register_backend("one-per-request", factory)
    r = await kit.run(wf)
    assert r.result.ok, r.result.error
    (engine,) = engines
    assert r.step("s").meta["mode"] == "separate" and len(engine.cached) == 4
    assert set(engine.keys) == {f"{r.result.run_id}/s"}
    first, *later = engine.cached
    assert first == 0  # the first request computes the whole prompt
    # every later one finds the prompt's leading blocks cached (all but a last partial
    # block), so it prefills a few tokens instead of all of them
    prompt = engine.prompt_tokens[0]
    assert all(prompt - 16 < c <= prompt for c in later), (engine.cached, prompt)


def by_seed(kit: Any, replies: list[Any]) -> Any:
    """A fake engine answering sample i (the request with seed i) with ``replies[i]``,
    whatever order the requests come in."""

    class BySeed(kit.FakeBackend):  # type: ignore[name-defined,misc]
        def _reply(self, request: Any) -> Any:
            return replies[request.seed]

    return BySeed(kit.by_pattern({}), supports_n=False)


async def test_adaptive_vote_reads_samples_in_order_not_as_they_finish(kit: Any) -> None:
    """Short answers finish first: a stopping rule fed in finish order would stop on the
    three quick `1`s and cancel the slower `7`s of samples 0 and 1, a vote biased by
    speed. In the order asked for, 7 7 1 1 1 never reaches the share, and the vote over
    every sample says 7."""
    slow, fast = kit.Reply("long and careful: answer 7", 0.3), kit.Reply("answer 1", 0.01)
    fake = by_seed(kit, [slow, slow, fast, fast, fast, slow, slow, slow])
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 8, "seed": 0},
        {**VOTE, "reducer": "adaptive_vote", "stop_rule": "share", "confidence": 0.75,
         "batch": 5, "min_n": 3, "max_n": 8}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == 7
    assert not r.cancelled() and fake.cancelled == 0
    assert r.step("v").meta["votes"] == {"7": 5, "1": 3}


async def test_adaptive_vote_does_not_count_samples_that_finished_out_of_turn(
        kit: Any) -> None:
    """Samples 3 and 5 finish first; once 0, 1 and 2 are in, 0-3 meet the rule (7 of
    3/4 = 0.75) and it stops: sample 4, still running, is cancelled, and sample 5, which
    had finished, is `late`, not voted, as the rule did not read it."""
    seven, one = kit.Reply("answer 7", 0.2), kit.Reply("answer 1", 0.01)
    fake = by_seed(kit, [seven, seven, seven, one, kit.Reply("answer 7", 3.0), one])
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 6, "seed": 0},
        {**VOTE, "reducer": "adaptive_vote", "stop_rule": "share", "confidence": 0.75,
         "batch": 6, "min_n": 3, "max_n": 6}]), fake=fake)
    assert r.result.ok, r.result.error
    assert r.result.output == 7
    out, meta = r.step("s").output, r.step("s").meta
    assert meta["stopped"] == "confident" and meta["decided_on"] == 4
    assert (out[4]["status"], out[5]["status"]) == ("cancelled", "late")
    assert out[5]["output"] == "answer 1" and "not voted" in out[5]["error"]
    assert r.step("v").meta["votes"] == {"7": 3, "1": 1}
    assert r.result.duration_s < 2.0


@pytest.mark.parametrize("policy", ["require_all", "ignore_failures"])
async def test_the_runs_token_budget_stops_the_samples_it_did_not_dispatch(
        kit: Any, policy: str) -> None:
    """Past the run's `budget: max_tokens`, the samples not dispatched are not started, as
    under the step's own budget (they were failed, and more kept being added): the vote
    counts the ones that ran, and a child never started is no failure to any policy."""
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("answer 5")}), supports_n=False)
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 8, "max_tokens": 10,
         "concurrency": 1}, {**VOTE, "policy": policy}], budget={"max_tokens": 20}), fake=fake)
    samples = r.step("s").output
    # each request spends 5 + 2 tokens: three are dispatched before 20 are spent
    assert len(fake.requests) == 3
    assert samples[:3] == ["answer 5"] * 3
    assert [e["status"] for e in samples[3:]] == ["not_started"] * 5
    # the one refused says why; the ones never added say the budget stopped them
    assert samples[3]["error"] == "run token budget of 20 spent (21 used): 's[3]' not dispatched"
    assert [e["error"] for e in samples[4:]] == ["token budget reached"] * 4
    assert r.step("s").meta["stopped"] == "budget"
    assert r.result.ok, r.result.error
    assert r.result.output == 5 and r.step("v").meta["valid"] == 3
