"""The viewer served by uvicorn on a background thread, and Chromium settings."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn

from orchestrator.store import TraceStore
from orchestrator.viewer import create_app

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Api:
    """A TestClient over the viewer, and a way to act on its store in the app's loop."""

    client: Any
    store: TraceStore
    portal: Any

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return self.portal.call(fn)  # type: ignore[no-any-return]


class LiveServer:
    """The viewer over ``store`` on 127.0.0.1 and a free port, in its own thread and loop.

    The store is only ever touched from the server's loop: use :meth:`call` to write
    to it (a MemoryStore is not thread-safe, a SqlStore is bound to its loop).

    :param store: the trace store, opened in the server's loop by :meth:`start`.
    :param token: passed to :func:`create_app`.
    """

    def __init__(self, store: TraceStore, token: str | None = None,
                 poll_interval_s: float = 0.1) -> None:
        self.store = store
        self.app = create_app(store, token, poll_interval_s=poll_interval_s)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=1, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="viewer-server", daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            await self.store.open()
            self._ready.set()
            await self._server.serve(sockets=[self._sock])

        self._loop.run_until_complete(main())

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the viewer's store did not open")
        for _ in range(200):
            if self._server.started:
                return self
            threading.Event().wait(0.02)
        raise RuntimeError("the viewer did not start")

    def submit(self, fn: Callable[[], Awaitable[T]]) -> Future[T]:
        """Start ``fn()`` on the server's loop; returns its future."""
        async def wrapper() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop)

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run ``fn()`` on the server's loop and wait for its result."""
        return self.submit(fn).result(timeout)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._loop.close()


@dataclass
class Browser:
    """The shared live server and browser, and what a page did that it should not."""

    server: LiveServer
    browser: Any
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def new_page(self, width: int = 1400, height: int = 900) -> Any:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("console", lambda msg: self.page_errors.append(msg.text)
                if msg.type == "error" and "404" not in msg.text else None)

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless (no downloaded browser)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)
