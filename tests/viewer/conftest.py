"""Fixtures of the viewer tests: an API client over each store backend, a live
server over a MemoryStore (and one over each backend), and Debian's Chromium driven by
Playwright."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from viewer_server import CHROMIUM, Api, Browser, LiveServer, launch_chromium

from orchestrator.store import MemoryStore, SqlStore, TraceStore
from orchestrator.viewer import create_app
from tests.store.conftest import (  # noqa: F401  (fixtures: a throwaway PostgreSQL, SQL stores)
    add_test_revision,
    make_run,
    pg_server,
    pg_url,
    sql_url,
)


def _store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> TraceStore:
    if kind == "memory":
        return MemoryStore()
    if kind == "postgres":
        return SqlStore(request.getfixturevalue("pg_url"))
    return SqlStore(str(tmp_path / "trace.db"))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """The viewer's API over a fresh store of each backend."""
    from fastapi.testclient import TestClient

    store = _store(request.param, request, tmp_path)
    app = create_app(store, poll_interval_s=0.02, heartbeat_s=0.2)
    with TestClient(app) as client:
        client.portal.call(store.open)
        try:
            yield Api(client, store, client.portal)
        finally:
            client.portal.call(store.close)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Build a client over a MemoryStore with other ``create_app`` options."""
    from fastapi.testclient import TestClient

    opened: list[Any] = []

    def make(**options: Any) -> Api:
        store = MemoryStore()
        client = TestClient(create_app(store, **options))
        client.__enter__()
        opened.append(client)
        return Api(client, store, client.portal)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


# -- browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    server = LiveServer(MemoryStore()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API holds an event loop in this
    thread while it runs, which async tests in other modules could not share."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def _browse(server: LiveServer, chromium: Any) -> Iterator[Browser]:
    """The browser on ``server``; fails the test if a page threw an error."""
    b = Browser(server, chromium)
    yield b
    for context in chromium.contexts:
        context.close()
    assert b.page_errors == [], b.page_errors


@pytest.fixture
def web(live_server: LiveServer, chromium: Any) -> Iterator[Browser]:
    """The live server and the browser; fails the test if a page threw an error."""
    yield from _browse(live_server, chromium)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def web_store(request: pytest.FixtureRequest, tmp_path: Path, chromium: Any
              ) -> Iterator[Browser]:
    """The browser on a live server of its own over a fresh store of each backend, as
    :func:`api`'s; fails the test if a page threw an error."""
    store = _store(request.param, request, tmp_path)
    server = LiveServer(store).start()
    try:
        yield from _browse(server, chromium)
    finally:
        server.call(store.close)
        server.stop()
