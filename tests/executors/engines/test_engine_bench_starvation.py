"""bench/engine_bench.py --starvation-order (a small load), and the policy switch it uses:
how ``program_aware`` orders starving calls."""

from __future__ import annotations

import re

import pytest
from bench_scripts import run_bench

from executors.engines._policy import (
    Call,
    PolicySettings,
    ServiceLedger,
    engine_priority,
    sort_key,
)

SETTINGS = PolicySettings(quantum_tokens=1000, starvation_s=60, starvation_ratio=4,
                          starvation_floor_s=5)


def test_the_starvation_mode_compares_both_orders(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_bench("engine_bench", ["--starvation-order", "--runs", "24", "--engines",
                                        "1", "--concurrency", "4"])
    out = capsys.readouterr().out
    assert "### Starving calls: 24 runs of 3 calls" in out
    assert "1 engines x 4 calls" in out
    rows = re.findall(r"^\| (fifo|program_aware, [^|]+) \| ([\d.]+) \| [\d.]+ \| [\d.]+ "
                      r"\| ([\d.]+) \|", out, re.MULTILINE)
    assert [label for label, _, _ in rows] == [
        "fifo", "program_aware, starving calls by the call's arrival",
        "program_aware, starving calls oldest run first"]
    assert set(result) == {"fifo", "arrival", "run"}
    for (_, median, makespan), name in zip(rows, ("fifo", "arrival", "run"), strict=True):
        assert float(median) == pytest.approx(result[name]["median_s"], abs=0.05)
        assert float(makespan) == pytest.approx(result[name]["makespan_s"], abs=0.05)
        assert 0 < result[name]["median_s"] <= result[name]["makespan_s"]
    # the other tables are not run in this mode
    assert "### Policies" not in out and "### Targets" not in out


def test_the_bench_refuses_a_size_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_bench("engine_bench", ["--starvation-order", "--runs", "0"])
    assert "--runs must be at least 1, not 0" in capsys.readouterr().err


def _two_starving_calls(settings: PolicySettings) -> tuple[Call, Call, ServiceLedger]:
    """``older``'s second call arrives after ``younger``'s first; both runs starve."""
    ledger = ServiceLedger()
    first = Call("older", 1.0, 0.0, 0)
    younger = Call("younger", 1.0, 0.0, 1)
    ledger.arrive(first)
    ledger.arrive(younger)
    ledger.queued(younger, 0.0)
    ledger.served(first, 10, 100, 1.0, settings.prompt_weight)
    ledger.leave(first)
    later = Call("older", 1.0, 1.0, 2)
    ledger.arrive(later)
    ledger.queued(later, 1.0)
    return later, younger, ledger


@pytest.mark.parametrize(("order", "first"), [("run", "older"), ("arrival", "younger")])
def test_starving_calls_go_in_the_order_the_settings_name(order: str, first: str) -> None:
    settings = PolicySettings(quantum_tokens=1000, starvation_s=60, starvation_ratio=4,
                              starvation_floor_s=5, starving_order=order)  # type: ignore[arg-type]
    later, younger, ledger = _two_starving_calls(settings)
    now = 40.0  # more than 4 x the 5 s floor: both runs starve
    chosen = min((later, younger), key=lambda c: sort_key(c, settings, ledger, now))
    assert chosen.run_id == first
    priorities = {c.run_id: engine_priority(c, settings, ledger, now) for c in (later, younger)}
    if order == "run":
        assert priorities["older"] > priorities["younger"]
    else:  # equal: the engine's own arrival order decides, as the pool's does
        assert priorities["older"] == priorities["younger"]


def test_oldest_run_first_is_the_default() -> None:
    assert PolicySettings().starving_order == "run"
    assert SETTINGS.starving_order == "run"
