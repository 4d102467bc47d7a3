"""JSON Schemas generated from the pydantic models (written to `schemas/` by `ponder schema --write`)."""

from __future__ import annotations

from typing import Any

from orchestrator.runtime.events import EVENT_ADAPTER
from orchestrator.spec.models import WorkflowSpec


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every published schema by name."""
    workflow = WorkflowSpec.model_json_schema(by_alias=True)
    workflow["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    workflow["title"] = "Ponder workflow"
    event = EVENT_ADAPTER.json_schema(by_alias=True)
    event["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    event["title"] = "Ponder trace event"
    return {"workflow": workflow, "trace_event": event}
