"""Ponder: a declarative workflow orchestrator for multi-step LLM reasoning graphs.

The public API is what this module re-exports; everything else is internal.

The names are imported when first used (PEP 562), so that importing a part of the
package (the ``ponder`` command's entry point) does not import all of it: the command
then answers a Ctrl-C that comes while it loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator._lazy import lazy_attribute

if TYPE_CHECKING:
    from orchestrator.errors import (
        BackendError,
        BackendHTTPError,
        BackendUnavailable,
        ConfigError,
        OutputSchemaError,
        PonderError,
        Problem,
        SpecError,
        StepDefinitionError,
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

#: each public name -> the module it comes from
_FROM: dict[str, str] = {
    "BackendError": "orchestrator.errors",
    "BackendHTTPError": "orchestrator.errors",
    "BackendUnavailable": "orchestrator.errors",
    "BranchStep": "orchestrator.spec.models",
    "ConfigError": "orchestrator.errors",
    "Event": "orchestrator.runtime.events",
    "ExecContext": "orchestrator.runtime.contracts",
    "Executor": "orchestrator.runtime.contracts",
    "Hook": "orchestrator.runtime.contracts",
    "JoinStep": "orchestrator.spec.kinds_fanout",
    "LLMBackend": "orchestrator.runtime.contracts",
    "LLMChunk": "orchestrator.runtime.contracts",
    "LLMRequest": "orchestrator.runtime.contracts",
    "LLMResponse": "orchestrator.runtime.contracts",
    "LLMStep": "orchestrator.spec.models",
    "MapStep": "orchestrator.spec.models",
    "ModelConfig": "orchestrator.spec.models",
    "OutputSchemaError": "orchestrator.errors",
    "PonderError": "orchestrator.errors",
    "Problem": "orchestrator.errors",
    "Registry": "orchestrator.runtime.registry",
    "Result": "orchestrator.runtime.contracts",
    "RunResult": "orchestrator.runtime.engine",
    "SampleStep": "orchestrator.spec.kinds_fanout",
    "Scorer": "orchestrator.spec.kinds_fanout",
    "SpawnStep": "orchestrator.spec.kinds_fanout",
    "SpecError": "orchestrator.errors",
    "StepDefinitionError": "orchestrator.errors",
    "StepError": "orchestrator.errors",
    "StepTimeout": "orchestrator.errors",
    "Task": "orchestrator.runtime.contracts",
    "ToolError": "orchestrator.errors",
    "ToolSpec": "orchestrator.runtime.registry",
    "ToolStep": "orchestrator.spec.models",
    "Usage": "orchestrator.runtime.contracts",
    "ValidationFailed": "orchestrator.errors",
    "Workflow": "orchestrator.sdk",
    "WorkflowSpec": "orchestrator.spec.models",
    "WorkflowStep": "orchestrator.spec.models",
    "tool": "orchestrator.runtime.registry",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _FROM, globals(), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    "StepDefinitionError",
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
