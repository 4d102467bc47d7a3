"""GPU engines and scale-out: in-process vLLM, engine pools, a simulated engine, Ray.

Backends (constructed as ``Backend(config: ModelConfig)``, like every LLM backend):

- ``vllm`` — :class:`VLLMBackend`, vLLM's ``AsyncLLM`` in this process (``gpu`` extra).
- ``pool`` — :class:`PoolBackend`, several engines behind one model: least-loaded
  routing with prefix affinity, per-engine limits, failover, and program-aware priority.
- ``sim-engine`` — :class:`SimEngineBackend`, a discrete-event model of a
  continuous-batching engine calibrated to vLLM on an H100; :func:`run_virtual` runs
  it (and anything else) on a virtual clock.
- ``ray-engine`` — :class:`RayEngineBackend`, any of these inside a Ray actor (``ray``
  extra); :class:`RayToolExecutor` runs tool steps as Ray tasks.

Nothing here imports vLLM or Ray until it is used.
"""

from executors.engines._model import EngineCounters, EngineModel, EngineParams
from executors.engines._policy import POLICIES
from executors.engines.pool import MemberStats, PoolBackend
from executors.engines.ray import RayEngineBackend, RayToolExecutor, connect_ray
from executors.engines.sim import SimEngineBackend
from executors.engines.vclock import VirtualClockLoop, run_virtual
from executors.engines.vllm import VLLMBackend, fake_vllm_api, shutdown_engines

__all__ = [
    "POLICIES",
    "EngineCounters",
    "EngineModel",
    "EngineParams",
    "MemberStats",
    "PoolBackend",
    "RayEngineBackend",
    "RayToolExecutor",
    "SimEngineBackend",
    "VLLMBackend",
    "VirtualClockLoop",
    "connect_ray",
    "fake_vllm_api",
    "run_virtual",
    "shutdown_engines",
]
