"""``ponder view``: serve the trace viewer on this machine.

The function :func:`view` is the command; its parameters carry their typer options,
so the CLI registers it as it is (``app.command("view")(view)``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import typer

from orchestrator.cli._options import store_given

TOKEN_ENV = "PONDER_VIEW_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
"""The ``Host`` names accepted when the viewer runs without a token."""


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the viewer on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def view(
    db: Annotated[
        str | None,
        typer.Option("--db", callback=store_given,
                     help="Trace store URL or SQLite path (default: $PONDER_DB_URL, "
                     "else ~/.ponder/ponder.db)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (0: any free one).", min=0, max=65535)
                    ] = 8765,
    token: Annotated[
        str | None,
        typer.Option(help=f"Require this token on every request (or set ${TOKEN_ENV}); "
                     "needed to bind anywhere but loopback."),
    ] = None,
) -> None:
    """Serve a web page that shows every run in the trace store, replays it and follows
    live runs. Read-only: a store of an older schema is not upgraded (run `ponder db
    upgrade`).

    \f
    :raises SystemExit: 2 when binding beyond loopback without a token or FastAPI/uvicorn
        are missing; 1 when the trace store cannot be opened or its schema is older than
        this Ponder's; 130 on Ctrl-C (and killed by SIGTERM), as ``ponder run`` and a shell
        report an interrupted command.
    """
    token = token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None:
        _say(f"error: binding to {host} would show your traces to the network; "
             f"give --token (or set {TOKEN_ENV}), or bind to 127.0.0.1")
        raise SystemExit(2)
    try:
        import uvicorn  # noqa: F401
        from fastapi import FastAPI  # noqa: F401
    except ImportError as exc:
        _say(f"error: the viewer needs FastAPI and uvicorn, which Ponder's install brings: "
             f"pip install 'fastapi>=0.110' 'uvicorn>=0.29' ({exc})")
        raise SystemExit(2) from None
    try:
        code = anyio.run(_serve, db, host, port, token)
    except KeyboardInterrupt:
        # before the server handles Ctrl-C (the store still opening): click makes it
        # "Aborted!" and status 1, as typer did before it carried its own copy of click
        raise SystemExit(130) from None
    if code:
        raise SystemExit(code)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so that the address is known to be free before the
    viewer says where it serves.

    :raises OSError: when the host does not resolve or the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn picks it
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _store_to_open(db: str | None) -> tuple[str | None, Path | None]:
    """The store URL to open for ``db``.

    A SQLite file that was named (``--db`` or ``$PONDER_DB_URL``) must exist: opening it
    would create an empty store there, and the viewer would show no runs for a mistyped
    path (the default file may be created). A SQLite file this user may not write (a
    copied trace, a read-only share) is opened read-only, since the viewer never writes.

    :returns: the URL, and the file when it is opened read-only.
    :raises StoreUnavailable: naming a named SQLite file that does not exist.
    :raises ConfigError: for a URL that is not a store's.
    """
    from orchestrator.store import ENV_VAR, MEMORY_URL, SqlStore, StoreUnavailable, resolve_store_url
    from orchestrator.store._open import read_only_url

    resolved = resolve_store_url(db)
    if resolved == MEMORY_URL:
        return db, None
    store = SqlStore(resolved)
    path = store.path
    if path is None:
        return db, None
    if not path.exists():
        if db or os.environ.get(ENV_VAR):
            raise StoreUnavailable(
                f"there is no SQLite file {path}; check the path given "
                f"({'--db' if db else '$' + ENV_VAR}), or run a workflow with that store first",
                url=store.url,
            )
        return db, None
    read_only = read_only_url(db)
    return (read_only, path) if read_only is not None else (db, None)


async def _serve(db: str | None, host: str, port: int, token: str | None) -> int:
    """Open the store, serve until interrupted, close the store; returns the exit code."""
    import uvicorn

    from orchestrator.errors import PonderError, StoreOutdated
    from orchestrator.store import open_store
    from orchestrator.store._open import require_schema
    from orchestrator.viewer.app import create_app

    try:
        sock = _listen(host, port)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        _say(f"error: cannot listen on {host} port {port}: {reason}; choose another --port "
             "(or --host)")
        return 1
    with sock:
        try:
            url, read_only = _store_to_open(db)
            # a database that holds no trace store (empty, another program's, a mistyped
            # name) is named, not given Ponder's tables and shown as a store of no runs
            await require_schema(db)
            # a viewer only reads: an older schema is the user's to upgrade, on purpose
            store = await open_store(url, auto_upgrade=False)
        except StoreOutdated as exc:
            _say(f"error: {exc}; `ponder view` reads a store as it is, and never upgrades it")
            return 1
        except PonderError as exc:
            _say(f"error: cannot open the trace store: {exc}")
            return 1
        try:
            # without a token, only the names of this machine (the one bound among them)
            shown = f"[{host.strip('[]')}]" if ":" in host else host
            allowed = None if token else (*LOOPBACK_HOSTS, shown)
            app = create_app(store, token, allowed_hosts=allowed)
            config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2,
                                    access_log=False)
            port = sock.getsockname()[1]
            # the address to open: a token is written as the query reads it back (a
            # "#", "&", "+" or space in it cut it short or changed it)
            url = f"http://{shown}:{port}/" + ("?token=" + quote(token, safe="") if token else "")
            where: Any = getattr(store, "url", None) or "memory://"
            if read_only is not None:
                where = f"{read_only}, read-only"

            class Server(uvicorn.Server):
                async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                    await super().startup(sockets)
                    # Said once it serves, and handles Ctrl-C: one pressed on reading it
                    # (before, uvicorn's startup was cancelled with a logged traceback)
                    # stops it as any later one does.
                    if self.started:
                        _say(f"Ponder viewer on {url}  (trace store: {where}; Ctrl-C to stop)")

            server = Server(config)
            await server.serve(sockets=[sock])
            return 0 if server.started else 1
        finally:
            with anyio.CancelScope(shield=True):
                await store.close()
