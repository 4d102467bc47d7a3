"""A pool member that is a pool itself, with a `stall_timeout_s` of its own no longer than
that pool takes to move a call off a hung engine: building the pool refuses it when the
run starts, and `ponder validate` said nothing. It now names it at the member's line,
with the number the pool computes (its members' longest limit and an eighth, plus its
health_timeout_s)."""

from __future__ import annotations

import pytest

from executors.engines.pool import PoolBackend
from orchestrator.errors import ConfigError
from orchestrator.graph.validate import validate_text
from orchestrator.spec.models import ModelConfig

WORKFLOW = """\
name: w
models:
  default:
    backend: pool
    options:
      shared: false
      members:
        - backend: simulated
          name: plain
        - backend: pool
          name: inner
          stall_timeout_s: OWN
          options:
            shared: false
            stall_timeout_s: 5
            health_timeout_s: 2
            members:
              - {backend: simulated, name: a}
              - {backend: INNER_BACKEND, name: b, stall_timeout_s: 6}
steps:
  - {id: s, kind: llm, prompt: hi}
"""


def _text(own: float, inner_backend: str = "simulated") -> str:
    return WORKFLOW.replace("OWN", str(own)).replace("INNER_BACKEND", inner_backend)


def test_an_inner_pools_own_limit_within_its_failover_is_named_at_its_line() -> None:
    # the inner pool's longest limit is b's 6 s: 6 * 9/8 + 2 = 8.75
    (problem,) = validate_text(_text(8.5), "w.yaml")
    assert (problem.line, problem.column) == (12, 11)
    assert problem.message.startswith(
        "model 'default': pool member 'inner': stall_timeout_s 8.5 must be more than 8.75s")
    assert problem.message.endswith("make it more than 8.75, or leave it out: that pool "
                                    "watches its own engines")


def test_an_own_limit_past_the_failover_passes() -> None:
    assert validate_text(_text(9), "w.yaml") == []


def test_without_an_own_limit_the_member_is_not_watched() -> None:
    text = _text(1).replace("          stall_timeout_s: 1\n", "")
    assert validate_text(text, "w.yaml") == []


def test_a_pool_nested_deeper_is_checked_at_its_own_line() -> None:
    deeper = _text(9).replace(
        "              - {backend: simulated, name: a}\n",
        "              - backend: pool\n                name: deep\n"
        "                stall_timeout_s: 1\n"
        "                options: {shared: false, members: [{backend: simulated}]}\n")
    (problem,) = validate_text(deeper, "w.yaml")
    assert problem.line == 20
    assert "pool member 'deep': stall_timeout_s 1 must be more than 347.5s" in problem.message


@pytest.mark.parametrize("own", [8.5, 8.75, 9])
def test_validate_agrees_with_the_pool_built_at_run_time(own: float) -> None:
    import yaml

    config = ModelConfig.model_validate(yaml.safe_load(_text(own))["models"]["default"])
    refused = bool(validate_text(_text(own), "w.yaml"))
    try:
        PoolBackend(config)
    except ConfigError as exc:
        assert refused and "member 'inner'" in str(exc)
    else:
        assert not refused
