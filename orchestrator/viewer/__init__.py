"""The trace viewer: a local web page over the trace store (``ponder view``).

:func:`create_app` builds the FastAPI application over any opened store (a
:class:`TraceReader`); :func:`orchestrator.viewer.cli.view` serves it with uvicorn.
Needs the ``viewer`` extra (FastAPI, uvicorn).
"""

from orchestrator.viewer._graph import GraphStep, declared_steps, graph_of
from orchestrator.viewer._reader import TraceReader
from orchestrator.viewer.app import API_PREFIX, EventsPage, RunDetail, RunsPage, create_app

__all__ = [
    "API_PREFIX",
    "EventsPage",
    "GraphStep",
    "RunDetail",
    "RunsPage",
    "TraceReader",
    "create_app",
    "declared_steps",
    "graph_of",
]
