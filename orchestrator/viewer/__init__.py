"""The trace viewer: a local web page over the trace store (``ponder view``).

:func:`create_app` builds the FastAPI application over any opened store (a
:class:`TraceReader`); :func:`orchestrator.viewer.cli.view` serves it with uvicorn.
The web names (``create_app`` and the API's page models) are imported on first use, so
importing this package, and the ``ponder`` command line that registers ``view``, works
without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator._lazy import lazy_attribute
from orchestrator.viewer._reader import TraceReader

if TYPE_CHECKING:
    from orchestrator.viewer._graph import GraphStep, declared_steps, graph_of
    from orchestrator.viewer.app import (
        API_PREFIX,
        EVENTS_PAGE_MAX,
        EventsPage,
        RunDetail,
        RunsPage,
        create_app,
    )

#: each name imported on first use -> the module that defines it. The web names need
#: FastAPI; the graph's modules (networkx among them) were most of the time `ponder`'s
#: start took before a command ran, and only the viewer's page needs them
_WHERE = {
    "API_PREFIX": "orchestrator.viewer.app",
    "EVENTS_PAGE_MAX": "orchestrator.viewer.app",
    "EventsPage": "orchestrator.viewer.app",
    "RunDetail": "orchestrator.viewer.app",
    "RunsPage": "orchestrator.viewer.app",
    "create_app": "orchestrator.viewer.app",
    "GraphStep": "orchestrator.viewer._graph",
    "declared_steps": "orchestrator.viewer._graph",
    "graph_of": "orchestrator.viewer._graph",
}

__all__ = [
    "API_PREFIX",
    "EVENTS_PAGE_MAX",
    "EventsPage",
    "GraphStep",
    "RunDetail",
    "RunsPage",
    "TraceReader",
    "create_app",
    "declared_steps",
    "graph_of",
]


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _WHERE, globals(), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
