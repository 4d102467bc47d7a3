"""The public names of :mod:`executors.llm` are pinned."""

from __future__ import annotations

import executors.llm


def test_all_is_pinned() -> None:
    assert executors.llm.__all__ == [
        "BackendStats",
        "LLMExecutor",
        "LocalBackend",
        "OpenAIBackend",
        "SimulatedBackend",
        "bundled_model_path",
        "extract_json",
    ]


def test_every_public_name_is_defined() -> None:
    for name in executors.llm.__all__:
        assert getattr(executors.llm, name).__module__.startswith("executors.llm")
