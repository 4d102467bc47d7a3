"""The scaling benchmark's pieces run, and measure what they claim to (small sizes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "scaling_bench.py"


@pytest.fixture
def bench() -> Any:
    spec = importlib.util.spec_from_file_location("scaling_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules["scaling_bench"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("scaling_bench", None)


async def test_first_finish_race_counts_tokens_lag_and_the_trace(bench: Any) -> None:
    lengths = [60, 200, 240, 300]
    every, prompt, traced, _, _ = await bench.race(4, lengths, "concat", 0.02)
    assert every == prompt + sum(lengths) and traced == every
    first, prompt, traced, _, lag = await bench.race(4, lengths, "first_finish", 0.02)
    assert traced == first  # the cancelled samples' tokens are all in the trace
    assert prompt + 4 * 60 <= first < every / 2
    assert 0 < lag < 100  # ms from the winner's final chunk to the losers' stop


async def test_adaptive_table_compares_rules_on_the_same_draws(bench: Any) -> None:
    rows = await bench.adaptive_table(40, 0)
    cells = {r.split(" | ")[0].strip("| "): r.split(" | ")[1:] for r in rows[2:]}
    assert cells["fixed vote, n = 16"][1] == "16.00"
    beta = cells["adaptive_vote, beta 0.95 (default)"]
    assert beta[0] == cells["fixed vote, n = 16"][0]  # same accuracy on these questions
    assert float(beta[1]) < 10


async def test_the_targets_table_judges_from_the_figures(bench: Any) -> None:
    found: dict[str, Any] = {}
    await bench.adaptive_table(40, 0, found)
    found["first_finish sigma 0.8 n 8"] = 0.29
    found["first_finish sigma 0.6 n 8"] = 0.40
    rows = bench.targets(found)
    assert rows[2].endswith("(sigma 0.8) | 29.0% | yes |")
    assert rows[3].endswith("(sigma 0.6) | 40.0% | no |")
    fixed_accuracy, _ = found["fixed vote, n = 16"]
    line = rows[4]
    share = float(line.split(": ")[1].split("%")[0]) / 100
    assert line.endswith("| yes |") == (share <= 1 / 3)
    # the setting it names keeps accuracy within 0.1 points of the fixed vote
    name = line.split(" | ")[1].split(":")[0]
    assert found[name][0] >= fixed_accuracy - 0.001
