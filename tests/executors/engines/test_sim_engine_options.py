"""``sim-engine`` options a user could get wrong: each is a problem of ``ponder validate``
at its line, naming the option and the value, and a run that was never validated refuses
it in the same words (a ``ConfigError``, never a traceback or an engine that waits for
ever)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from executors.engines import SimEngineBackend
from orchestrator.errors import BackendHTTPError, ConfigError
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

PREFIX = "model 'default': sim-engine backend options: "
BAD: list[tuple[dict[str, Any], str]] = [
    ({"kv_blocks": 0}, "kv_blocks: Input should be greater than or equal to 1 (got 0)"),
    ({"kv_blocks": True}, "kv_blocks: Input should be a valid integer (got True)"),
    ({"max_model_len": 0}, "max_model_len: Input should be greater than or equal to 1"),
    ({"max_num_seqs": 2.5}, "max_num_seqs: Input should be a valid integer"),
    ({"seed": "x"}, "seed: Input should be a valid integer (got 'x')"),
    ({"time_scale": -1}, "time_scale: Input should be greater than or equal to 0 (got -1)"),
    # an infinite wait parked every request for good
    ({"time_scale": float("inf")}, "time_scale: Input should be a finite number (got inf)"),
    ({"decode_base_s": float("inf")}, "decode_base_s: Input should be a finite number"),
    ({"prefill_per_token_s": 1e300}, "prefill_per_token_s: Input should be less than or "
                                     "equal to 60"),
    ({"starvation_s": 0}, "starvation_s: Input should be greater than 0 (got 0)"),
    ({"starvation_s": float("inf")}, "starvation_s: Input should be a finite number"),
    ({"kvblocks": 3}, "unknown option 'kvblocks' (known: decode_base_s,"),
    ({"scheduling_policy": "lifo"}, "scheduling_policy: Input should be 'fcfs' or "
                                    "'priority' (got 'lifo')"),
    # the texts' rules are the simulated backend's: checked here, not first at the run
    ({"responses": [{"when": "x", "output": "y"}]}, "responses.0.match: Field required"),
    ({"responses": [{"match": "x"}]},
     "responses.0: give exactly one of `output` and `sequence`"),
]


def _workflow(tmp_path: Path, options: dict[str, Any]) -> Path:
    file = tmp_path / "sim.yaml"
    file.write_text("name: s\nmodels:\n  default:\n    backend: sim-engine\n    options:\n"
                    "      output_tokens: max\n"
                    + "".join(f"      {yaml.safe_dump({k: v}, default_flow_style=True)[1:-2]}\n"
                              for k, v in options.items())
                    + "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    return file


@pytest.mark.parametrize(("options", "words"), BAD, ids=[str(o) for o, _ in BAD])
def test_a_bad_option_is_a_problem_at_its_line(tmp_path: Path, options: dict[str, Any],
                                               words: str) -> None:
    problem, *more = validate_file(_workflow(tmp_path, options))
    assert [p.line for p in more] == [7] * len(more)  # a rule's unknown key, apart
    assert problem.line == 7  # the option's own line, under `output_tokens: max`
    assert problem.message.startswith(PREFIX + words), problem.message
    with pytest.raises(ConfigError) as info:
        SimEngineBackend(ModelConfig(backend="sim-engine", model="m", options=options))
    assert str(info.value).startswith(PREFIX.removeprefix("model 'default': ") + words)


def test_good_options_pass(tmp_path: Path) -> None:
    options = {"kv_blocks": 64, "time_scale": 0, "max_model_len": 1024,
               "responses": [{"match": "capital", "output": "Paris"}]}
    assert validate_file(_workflow(tmp_path, options)) == []
    engine = SimEngineBackend(ModelConfig(backend="sim-engine", model="m", options=options))
    assert engine.options.kv_blocks == 64


@pytest.mark.anyio
async def test_a_request_beyond_the_kv_cache_names_the_options() -> None:
    engine = SimEngineBackend(ModelConfig(backend="sim-engine", model="m",
                                          options={"kv_blocks": 1, "time_scale": 0}))
    with pytest.raises(BackendHTTPError) as info:
        await engine.complete(LLMRequest(messages=[{"role": "user", "content": "hi"}],
                                         max_tokens=100))
    assert info.value.status == 400
    assert "needs 8 KV blocks of 16 tokens (block_size); the engine has 1 (kv_blocks)" \
        in str(info.value)
