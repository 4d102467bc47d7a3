"""A pool's numeric options are finite: ``.inf`` is refused at its line, and a run's
service that overflows a float does not fail its calls nor take its engine out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from executors.engines import PoolBackend
from executors.engines._policy import PolicySettings, level
from orchestrator.errors import ConfigError
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

Ask = Callable[..., LLMRequest]
Config = Callable[..., ModelConfig]
SIM = {"backend": "sim-engine", "model": "llama-3-8b"}
FLOAT_OPTIONS = ["affinity_slack", "probe_after_s", "health_timeout_s", "busy_backoff_s",
                 "busy_backoff_max_s", "busy_wait_s", "busy_eject_after_s", "stall_timeout_s",
                 "quantum_tokens", "starvation_s", "prompt_weight", "starvation_ratio",
                 "starvation_floor_s"]


@pytest.mark.parametrize("option", FLOAT_OPTIONS)
def test_an_infinite_option_is_refused_at_its_line(tmp_path: Path, option: str) -> None:
    file = tmp_path / "pool.yaml"
    file.write_text("name: p\nmodels:\n  default:\n    backend: pool\n    options:\n"
                    f"      {option}: .inf\n"
                    "      members:\n        - {backend: sim-engine}\n"
                    "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    [problem] = validate_file(file)
    assert problem.line == 6
    assert problem.message == (f"model 'default': pool backend options: {option}: Input "
                               "should be a finite number (got inf)")


@pytest.mark.parametrize("option", FLOAT_OPTIONS)
def test_a_run_refuses_it_too(pool_config: Config, option: str) -> None:
    with pytest.raises(ConfigError, match=f"{option}: Input should be a finite number"):
        PoolBackend(pool_config([SIM], **{option: float("inf")}))


def test_a_service_past_a_floats_range_is_the_last_level() -> None:
    settings = PolicySettings(levels=8)
    assert level(float("inf"), settings) == 7
    assert level(float("nan"), settings) == 7
    assert level(1e308, PolicySettings(quantum_tokens=1e-10)) == 7
    assert level(2048 * 3, settings) == 2


@pytest.mark.anyio
async def test_a_huge_prompt_weight_does_not_fail_calls_or_take_the_engine_out(
        ask: Ask, pool_config: Config) -> None:
    pool = PoolBackend(pool_config([{**SIM, "concurrency": 1}], prompt_weight=1e308))
    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(pool.complete, ask(f"question {i}", max_tokens=5, run_id="r"))
    [stats] = pool.stats().values()
    assert (stats.completed, stats.failed, stats.ejections) == (3, 0, 0)
    await pool.aclose()
