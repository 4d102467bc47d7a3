"""A backend that refuses its ``options:`` at run time words each problem as
``ponder validate`` does: a run that was never validated (an SDK run, a model given on
the command line) shows the user the same message for the same problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.errors import ConfigError
from orchestrator.graph.validate import validate_file
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import ModelConfig

#: backends whose constructor reads its options before it needs anything installed,
#: each with options that have an unknown key and a value out of range
BAD_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("simulated", {"colour": "red", "capacity": 0}),
    ("sim-engine", {"colour": "red", "max_num_seqs": "many"}),
    ("openai", {"colour": "red", "structured_outputs": "xml"}),
    ("vllm", {"colour": "red", "gpu_memory_utilization": 2}),
    ("pool", {"colour": "red", "members": []}),
]


def _run_time_message(backend: str, options: dict[str, Any]) -> str:
    factory = Registry.default().backend_factory(backend)
    with pytest.raises(ConfigError) as info:
        factory(ModelConfig(backend=backend, model="m", base_url="http://127.0.0.1:1/v1",
                            options=options))
    return str(info.value)


@pytest.mark.parametrize(("backend", "options"), BAD_OPTIONS)
def test_a_run_refuses_options_in_the_words_of_validate(
        backend: str, options: dict[str, Any], tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text(yaml.safe_dump({
        "name": "w", "models": {"m": {"backend": backend, "options": options}},
        "steps": [{"id": "a", "kind": "llm", "model": "m", "prompt": "hi"}]}))
    # without vLLM here, validate also names the extra `gpu` (at `backend:`, not options)
    validated = [p.message for p in validate_file(file) if "is not installed" not in p.message]
    prefix = "model 'm': "
    assert len(validated) == 2 and all(m.startswith(prefix) for m in validated), validated
    # validate lists them by line, a run in the options' order
    assert sorted(_run_time_message(backend, options).split("; ")) == sorted(
        m.removeprefix(prefix) for m in validated)


def test_the_message_names_the_backend_the_key_and_the_value() -> None:
    assert _run_time_message("simulated", {"capacity": 0, "colour": "red"}) == (
        "simulated backend options: capacity: Input should be greater than or equal to 1 "
        "(got 0); simulated backend options: unknown option 'colour' (known: "
        + ", ".join(Registry.default().backend_factory("simulated")
                    .options_model.model_fields)  # type: ignore[attr-defined]
        + ")")
