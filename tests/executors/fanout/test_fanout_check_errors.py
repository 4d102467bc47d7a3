"""A first_finish join none of whose children passed its check says why: how many the
check could not judge (it errored: its template, its step, its server) and how many its
answer turned down, with the first of each (a check's template error names its
file:line). It said only "no child ... passed the check"."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio

BROKEN = """\
name: t
models:
  default: {backend: fake}
steps:
  - id: s
    kind: sample
    prompt: Propose.
    n: 3
  - id: j
    kind: join
    of: s
    reducer: first_finish
    check:
      llm: default
      prompt: |
        Rate this.
        {{ candidate.foo.bar }}
"""


async def test_a_check_that_errors_on_every_child_is_named_with_its_line(kit: Any) -> None:
    wf = Workflow.from_yaml_text(BROKEN, name="flow.yaml")
    backend = kit.FakeBackend(kit.by_pattern({"Propose": kit.Reply("candidate A")}))
    wf.register_backend("fake", lambda cfg: backend)
    r = await kit.run(wf)
    assert not r.result.ok
    error = r.failed("j").error
    assert error.startswith("join 'j': no child of 's' finished and passed the check: of its "
                            "3 children, the check errored on 3 (child s[0]: step "
                            "'s[check0]' prompt template (flow.yaml:17): candidate.foo: "), error
    assert "turned down" not in error
    assert "Traceback" not in error
    # each rejected child's marker keeps its own check error
    assert all(e["error"].startswith("failed the check, which errored: step 's[check")
               for e in r.step("s").output)


def _map_checked(check: dict[str, Any]) -> dict[str, Any]:
    return {"steps": [
        {"id": "m", "kind": "map", "over": ["a", "b", "c"],
         "step": {"kind": "llm", "prompt": "Answer {{ item }}"}},
        {"id": "j", "kind": "join", "of": "m", "reducer": "first_finish",
         "check": {"llm": "default", **check}}]}


#: the map's items answer A, B, C; the check fails on B and turns A and C down
SCRIPT = {r"^Answer a$": "A", r"^Answer b$": "B", r"^Answer c$": "C",
          r"^Check A$": "no", r"^Check C$": "wrong"}


async def test_errors_and_answers_of_the_check_are_counted_apart(kit: Any) -> None:
    table: dict[str, Any] = {k: kit.Reply(v) for k, v in SCRIPT.items()}
    table[r"^Check B$"] = kit.Reply(fail=True)
    d = _map_checked({"prompt": "Check {{ candidate }}"})
    r = await kit.run(kit.doc(d["steps"]), fake=kit.FakeBackend(kit.by_pattern(table)))
    assert not r.result.ok
    error = r.failed("j").error
    assert error.startswith("join 'j': no child of 'm' finished and passed the check: of its "
                            "3 children, the check errored on 1 (child m[1]: "), error
    assert "fake: scripted failure" in error
    assert error.endswith("; its answer turned down 2 (child m[0]: the check's judge answered 'no')"), error


async def test_an_invalid_score_is_the_checks_answer_not_its_error(kit: Any) -> None:
    table = {k: kit.Reply(v) for k, v in SCRIPT.items()}
    table[r"^Check B$"] = kit.Reply("maybe")
    d = _map_checked({"prompt": "Check {{ candidate }}", "threshold": 5})
    r = await kit.run(kit.doc(d["steps"]), fake=kit.FakeBackend(kit.by_pattern(table)))
    assert not r.result.ok
    error = r.failed("j").error
    assert "errored" not in error
    assert error.endswith("of its 3 children, its answer turned down 3 (child m[0]: invalid "
                          "score: no number in 'no')"), error


async def test_an_endpoint_check_that_fails_is_an_error_of_the_check(kit: Any) -> None:
    wf = Workflow.from_yaml_text(kit.dump(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Propose.", "n": 2},
        {"id": "j", "kind": "join", "of": "s", "reducer": "first_finish",
         "check": {"endpoint": "http://rm.local/v1", "model": "rm",
                   "prompt": "Rate {{ candidate }}"}}],
        models={"default": {"backend": "fake"}})), name="flow.yaml")
    backend = kit.FakeBackend(kit.by_pattern({"Propose": kit.Reply("A"),
                                              "Rate": kit.Reply(fail=True)}))
    wf.register_backend("fake", lambda cfg: backend)
    wf.register_backend("openai", lambda cfg: backend)
    r = await kit.run(wf)
    assert not r.result.ok
    error = r.failed("j").error
    assert "of its 2 children, the check errored on 2 (child s[0]: " in error, error
    assert "fake: scripted failure" in error


async def test_a_failed_child_does_not_hide_the_check_errors_of_the_others(kit: Any) -> None:
    """The policy refuses (one child failed, none passed): its error names the failed
    child and, as well, what the check made of the children that finished."""
    table: dict[str, Any] = {k: kit.Reply(v) for k, v in SCRIPT.items()}
    table[r"^Answer b$"] = kit.Reply(fail=True)
    d = _map_checked({"prompt": "Check {{ candidate.foo.bar }}"})
    r = await kit.run(kit.doc(d["steps"]), fake=kit.FakeBackend(kit.by_pattern(table)))
    assert not r.result.ok
    error = r.failed("j").error
    assert error.startswith("join 'j': 0 of 3 children of 'm' succeeded, 1 needed: m[1]: "
                            ), error
    assert ("; others finished but did not pass the check: the check errored on 2 (child "
            "m[0]: step 'j[check0]' prompt template") in error, error
    assert "candidate.foo: " in error


async def test_a_tool_check_that_finds_nothing_names_its_tool(kit: Any) -> None:
    """The extract tool finds no 'Answer: N' and returns None: the error says the check's
    tool returned it (it said only "it returned None")."""
    fake = kit.FakeBackend(kit.by_pattern({"Q": kit.Reply("no answer here")}))
    r = await kit.run(kit.doc([
        {"id": "s", "kind": "sample", "prompt": "Q?", "n": 2},
        {"id": "j", "kind": "join", "of": "s", "reducer": "first_finish",
         "check": {"tool": "extract",
                   "args": {"text": "${candidate}", "pattern": "Answer: \\d+"}}}]),
        fake=fake)
    error = r.failed("j").error
    assert error.endswith("its answer turned down 2 (child s[0]: the check's tool "
                          "'extract' returned None)"), error
