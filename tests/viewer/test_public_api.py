"""The viewer package's public names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator.viewer as viewer

ROOT = Path(__file__).resolve().parents[2]


def test_public_names_are_pinned() -> None:
    assert sorted(viewer.__all__) == [
        "API_PREFIX", "EVENTS_PAGE_MAX", "EventsPage", "GraphStep", "RunDetail", "RunsPage",
        "TraceReader", "create_app", "declared_steps", "graph_of",
    ]
    for name in viewer.__all__:
        assert getattr(viewer, name) is not None


def test_every_store_is_a_trace_reader() -> None:
    from orchestrator.store import MemoryStore, SqlStore

    assert isinstance(MemoryStore(), viewer.TraceReader)
    assert isinstance(SqlStore("sqlite+aiosqlite:///:memory:"), viewer.TraceReader)


def test_importing_the_package_leaves_the_web_and_the_graph_for_first_use() -> None:
    code = ("import json, sys; import orchestrator.viewer; print(json.dumps(sorted(m for m in "
            "('fastapi', 'networkx', 'orchestrator.viewer.app', 'orchestrator.viewer._graph') "
            "if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_a_name_is_imported_once_and_listed_before_its_use() -> None:
    assert set(viewer.__all__) <= set(dir(viewer))
    graph_of = viewer.graph_of
    assert vars(viewer)["graph_of"] is graph_of  # kept: the next use does not import


def test_a_name_the_package_lacks_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"'orchestrator\.viewer' has no attribute 'nope'"):
        viewer.nope  # noqa: B018
