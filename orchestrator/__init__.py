"""Ponder: a declarative workflow orchestrator for multi-step LLM reasoning graphs.

The public API is what this module re-exports; everything else is internal.
"""

from orchestrator.errors import (
    BackendError,
    BackendHTTPError,
    BackendUnavailable,
    ConfigError,
    OutputSchemaError,
    PonderError,
    Problem,
    SpecError,
    StepError,
    StepTimeout,
    ToolError,
    ValidationFailed,
)
from orchestrator.runtime.contracts import (
    ExecContext,
    Executor,
    Hook,
    LLMBackend,
    LLMChunk,
    LLMRequest,
    LLMResponse,
    Result,
    Task,
    Usage,
)
from orchestrator.runtime.engine import RunResult
from orchestrator.runtime.events import Event
from orchestrator.runtime.registry import Registry, ToolSpec, tool
from orchestrator.sdk import Workflow
from orchestrator.spec.kinds_fanout import JoinStep, SampleStep, Scorer, SpawnStep
from orchestrator.spec.models import (
    BranchStep,
    LLMStep,
    MapStep,
    ModelConfig,
    ToolStep,
    WorkflowSpec,
    WorkflowStep,
)

__all__ = [
    "BackendError",
    "BackendHTTPError",
    "BackendUnavailable",
    "BranchStep",
    "ConfigError",
    "Event",
    "ExecContext",
    "Executor",
    "Hook",
    "JoinStep",
    "LLMBackend",
    "LLMChunk",
    "LLMRequest",
    "LLMResponse",
    "LLMStep",
    "MapStep",
    "ModelConfig",
    "OutputSchemaError",
    "PonderError",
    "Problem",
    "Registry",
    "Result",
    "RunResult",
    "SampleStep",
    "Scorer",
    "SpawnStep",
    "SpecError",
    "StepError",
    "StepTimeout",
    "Task",
    "ToolError",
    "ToolSpec",
    "ToolStep",
    "Usage",
    "ValidationFailed",
    "Workflow",
    "WorkflowSpec",
    "WorkflowStep",
    "tool",
]
__version__ = "0.1.0"
