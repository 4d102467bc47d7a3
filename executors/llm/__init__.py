"""LLM backends (local llama.cpp, OpenAI-compatible HTTP, simulated) and the ``llm`` executor.

Backends implement :class:`~orchestrator.runtime.contracts.LLMBackend` and are
constructed as ``Backend(config: ModelConfig)``. :class:`LocalBackend` needs the
``local`` extra only when constructed, so importing this package never loads llama.cpp.

The names are imported when first used (PEP 562): a run on one backend does not import
the others' modules (the ``openai`` client library alone took half a second of a
``ponder run`` on the simulated or the bundled model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator._lazy import lazy_attribute

if TYPE_CHECKING:
    from executors.llm._common import BackendStats
    from executors.llm._json_output import extract_json
    from executors.llm.executor import LLMExecutor
    from executors.llm.local import LocalBackend, bundled_model_path
    from executors.llm.openai_compat import OpenAIBackend
    from executors.llm.simulated import SimulatedBackend

#: each public name -> the module that defines it
_WHERE = {
    "BackendStats": "executors.llm._common",
    "extract_json": "executors.llm._json_output",
    "LLMExecutor": "executors.llm.executor",
    "LocalBackend": "executors.llm.local",
    "bundled_model_path": "executors.llm.local",
    "OpenAIBackend": "executors.llm.openai_compat",
    "SimulatedBackend": "executors.llm.simulated",
}

__all__ = [
    "BackendStats",
    "LLMExecutor",
    "LocalBackend",
    "OpenAIBackend",
    "SimulatedBackend",
    "bundled_model_path",
    "extract_json",
]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _WHERE, globals(), name)
