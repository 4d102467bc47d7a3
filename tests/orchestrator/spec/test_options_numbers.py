"""A backend's or planner's ``options:`` refuse a boolean where a number belongs, as the
workflow's own fields do: ``time_scale: true`` ran the simulated engine at 1, silently."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from orchestrator.graph.validate import validate_text
from orchestrator.spec.options import option_problems


class _Inner(BaseModel):
    limit: float | None = None
    flag: bool = False


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 1
    ratio: float | None = None
    anything: int | str = 0
    inner: _Inner = _Inner()


def test_booleans_for_numbers_are_problems_at_their_paths() -> None:
    problems = option_problems(_Options, {"count": True, "ratio": False, "anything": True,
                                          "inner": {"limit": True, "flag": True}}, "fake")
    assert problems == [
        (("count",), "fake options: count: a number, not `true`"),
        (("ratio",), "fake options: ratio: a number, not `false`"),
        (("inner", "limit"), "fake options: inner.limit: a number, not `true`"),
    ]


def test_other_problems_come_first_and_once() -> None:
    assert option_problems(_Options, {"count": "x", "ratio": True, "colour": 1}, "fake") == [
        (("count",), "fake options: count: Input should be a valid integer, unable to parse "
                     "string as an integer (got 'x')"),
        (("colour",), "fake options: unknown option 'colour' (known: count, ratio, anything, "
                      "inner)"),
        (("ratio",), "fake options: ratio: a number, not `true`"),
    ]


def test_a_models_options_are_checked_so_at_their_line() -> None:
    text = """\
name: w
models:
  default:
    backend: simulated
    options:
      time_scale: yes
steps:
  - {id: a, kind: llm, prompt: hi}
"""
    assert [(p.line, p.message) for p in validate_text(text, "w.yaml")] == [
        (6, "model 'default': simulated backend options: time_scale: a number, not `true`")]
