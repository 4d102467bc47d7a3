"""LLM backends (local llama.cpp, OpenAI-compatible HTTP, simulated) and the ``llm`` executor.

Backends implement :class:`~orchestrator.runtime.contracts.LLMBackend` and are
constructed as ``Backend(config: ModelConfig)``. :class:`LocalBackend` needs the
``local`` extra only when constructed, so importing this package never loads llama.cpp.
"""

from executors.llm._common import BackendStats
from executors.llm._json_output import extract_json
from executors.llm.executor import LLMExecutor
from executors.llm.local import LocalBackend, bundled_model_path
from executors.llm.openai_compat import OpenAIBackend
from executors.llm.simulated import SimulatedBackend

__all__ = [
    "BackendStats",
    "LLMExecutor",
    "LocalBackend",
    "OpenAIBackend",
    "SimulatedBackend",
    "bundled_model_path",
    "extract_json",
]
