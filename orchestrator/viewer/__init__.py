"""The trace viewer: a local web page over the trace store (``ponder view``).

:func:`create_app` builds the FastAPI application over any opened store (a
:class:`TraceReader`); :func:`orchestrator.viewer.cli.view` serves it with uvicorn.
The web names (``create_app`` and the API's page models) are imported on first use, so
importing this package, and the ``ponder`` command line that registers ``view``, works
without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

_FROM_APP = ("API_PREFIX", "EVENTS_PAGE_MAX", "EventsPage", "RunDetail", "RunsPage", "create_app")

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


#: imported on first use too: the graph's modules (networkx among them) are most of the
#: time `ponder`'s start took before a command ran, and only the viewer's page needs them
_FROM_GRAPH = ("GraphStep", "declared_steps", "graph_of")


def __getattr__(name: str) -> Any:
    if name in _FROM_APP:
        from orchestrator.viewer import app

        return getattr(app, name)
    if name in _FROM_GRAPH:
        from orchestrator.viewer import _graph

        return getattr(_graph, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
