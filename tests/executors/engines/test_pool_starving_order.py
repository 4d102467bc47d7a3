"""The pool option ``starving_order``: how ``program_aware`` orders starving calls,
oldest run first (``run``, the default) or by the call's arrival (``arrival``). It was
no option: bench/engine_bench.py --starvation-order set it by replacing the pool's
private policy settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bench_scripts import run_bench

from executors.engines.pool import PoolBackend
from orchestrator.errors import ConfigError
from orchestrator.spec.models import ModelConfig

MEMBERS = [{"backend": "sim-engine", "model": "llama-3-8b"}]
WRONG = "starving_order: Input should be 'run' or 'arrival' (got 'oldest')"


def _options(**more: Any) -> dict[str, Any]:
    return {"members": MEMBERS, "shared": False, **more}


def test_a_bad_value_is_named_by_validate_and_by_the_run() -> None:
    assert PoolBackend.option_problems(_options(starving_order="oldest")) == [
        (("starving_order",), f"pool backend options: {WRONG}")]
    with pytest.raises(ConfigError, match=f"^{re.escape(f'pool backend options: {WRONG}')}$"):
        PoolBackend(ModelConfig(backend="pool", options=_options(starving_order="oldest")))


@pytest.mark.parametrize("order", ["run", "arrival"])
def test_either_order_is_taken(order: str) -> None:
    assert PoolBackend.option_problems(_options(starving_order=order)) == []
    assert PoolBackend(ModelConfig(backend="pool", options=_options(starving_order=order))
                       ).options.starving_order == order


def test_the_option_orders_a_pool_where_every_run_starves(
        capsys: pytest.CaptureFixture[str]) -> None:
    # 300 runs of 3 calls one after another on one engine of 4 calls: every run starves;
    # by arrival, each run's first calls go before any run's later ones, as under fifo
    result = run_bench("engine_bench", ["--starvation-order", "--runs", "300", "--engines",
                                        "1", "--concurrency", "4"])
    capsys.readouterr()
    assert result["arrival"]["median_s"] == pytest.approx(result["fifo"]["median_s"])
    assert result["run"]["median_s"] < 0.7 * result["arrival"]["median_s"]
