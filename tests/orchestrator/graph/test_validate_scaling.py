"""Checking a workflow costs about as much per step whatever its size: the hint for an
unknown step and the check of hyphenated ids in templates looked at every step id for
each reference and each template (n steps with a template or a bad reference each: n²)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.graph import compile as compile_mod
from orchestrator.graph.validate import validate_text

IDS = ["alpha", "Beta", "be-ta", "ab", "a", "gamma-1", "gamma-10", "Gam", "x-y"]


def _meant(name: str, ids: list[str]) -> str | None:
    """The rule the hint follows: the first id that is the name but for case or starts with
    its first three characters."""
    return next((s for s in ids if s.lower() == name.lower() or s.startswith(name[:3])), None)


def _workflow(ids: list[str], refs: list[str]) -> str:
    lines = ["name: w", "steps:"]
    for sid in ids:
        lines += [f"  - id: {sid}", "    kind: tool", "    tool: calc",
                  "    args: {expression: '1'}"]
    for i, ref in enumerate(refs):
        lines += [f"  - id: r{i}", "    kind: tool", "    tool: calc",
                  f"    args: {{expression: '${{steps.{ref}.output}}'}}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", ["ALPHA", "alp", "Bet", "beta", "be-", "b", "abc", "gam",
                                  "gamma-2", "Ga", "zzz", "x-z", "xy"])
def test_an_unknown_step_hints_the_first_id_of_the_rule(name: str) -> None:
    [problem] = validate_text(_workflow(IDS, [name]), "w.yaml")
    assert problem.message == f"unknown step {name!r} in `${{steps.{name}.output}}`"
    meant = _meant(name, [*IDS, "r0"])
    assert problem.hint == (f"did you mean {meant!r}?" if meant else
                            "reference an existing step id")


class _CountedIds(dict[str, int]):
    """A checker's step index that counts the times it is looked through whole."""

    scans = 0

    def __iter__(self) -> Any:
        _CountedIds.scans += 1
        return super().__iter__()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[_CountedIds]:
    init = compile_mod._Checker.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.index = _CountedIds(self.index)

    monkeypatch.setattr(compile_mod._Checker, "__init__", counting)
    _CountedIds.scans = 0
    return _CountedIds


def test_bad_references_do_not_each_look_through_every_step(
        counted: type[_CountedIds]) -> None:
    n = 300
    problems = validate_text(_workflow([f"s-{i}" for i in range(n)],
                                       [f"t{i}" for i in range(n)]), "w.yaml")
    assert len(problems) == n
    assert counted.scans <= 3  # once for the hints' tables (it was once per reference)


def test_templates_do_not_each_look_through_every_step(counted: type[_CountedIds]) -> None:
    n = 300
    lines = ["name: w", "models:", "  default: {backend: simulated}", "steps:",
             "  - id: s-0", "    kind: llm", "    prompt: hi"]
    for i in range(1, n):
        lines += [f"  - id: s-{i}", "    kind: llm",
                  f"    prompt: \"after {{{{ steps['s-{i - 1}'].output }}}}\""]
    lines += ["  - id: last", "    kind: llm",
              "    prompt: \"{{ steps.s-7.output }} {{ steps.s-10.output }} {{ steps.s-3.output }}\""]
    problems = validate_text("\n".join(lines) + "\n", "w.yaml")
    # each hyphenated id the last template writes after `steps.` (not `s-1`, which only
    # `steps.s-10` holds), in the file's order
    assert [p.message.split("`")[1] for p in problems] == ["steps.s-3", "steps.s-7",
                                                           "steps.s-10"]
    assert counted.scans <= 3  # once for the hyphenated ids (it was once per template)
