"""Token, host and binding rules of the viewer, and the ``ponder view`` command's refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from viewer_server import Api
from viewer_traces import research_trace

from orchestrator.store import SqlStore, StoreOutdated, open_store
from orchestrator.viewer.cli import is_loopback, view
from tests.store.conftest import HEAD

TOKEN = "s3cret-t\u00f8ken"  # non-ASCII on purpose
PATHS = ("/", "/runs/research-1", "/static/js/run.js", "/api/v1/runs",
         "/api/v1/runs/research-1", "/api/v1/runs/research-1/events",
         "/api/v1/runs/research-1/stream", "/api/v1/openapi.json")


@pytest.fixture
def guarded(make_client: Callable[..., Api]) -> Api:
    api = make_client(token=TOKEN)
    api.call(lambda: api.store.append(research_trace().events))
    return api


@pytest.mark.parametrize("path", PATHS)
def test_every_request_without_the_token_is_401(guarded: Api, path: str) -> None:
    response = guarded.client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    if path.startswith("/api/"):
        assert response.json() == {"detail": "missing or wrong token"}
    else:
        assert "needs its token" in response.text


@pytest.mark.parametrize("how", ["header", "query", "cookie"])
def test_a_wrong_token_is_401(guarded: Api, how: str) -> None:
    path = "/api/v1/runs"
    if how == "header":
        response = guarded.client.get(path, headers={"Authorization": "Bearer nope"})
    elif how == "query":
        response = guarded.client.get(path, params={"token": "nope"})
    else:
        guarded.client.cookies.set("ponder_view_token", "nope")
        response = guarded.client.get(path)
    assert response.status_code == 401


def test_the_token_opens_every_path_by_header(guarded: Api) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}".encode()}
    for path in PATHS:
        assert guarded.client.get(path, headers=bearer).status_code == 200, path


def test_the_page_opened_with_the_token_sets_a_cookie_for_its_own_requests(guarded: Api) -> None:
    page = guarded.client.get("/runs/research-1", params={"token": TOKEN})
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("ponder_view_token=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    # the client now sends the cookie: the page's scripts and API calls need no token
    assert guarded.client.get("/static/js/run.js").status_code == 200
    assert guarded.client.get("/api/v1/runs/research-1/events").status_code == 200


def test_an_sse_stream_takes_the_token_in_the_query(guarded: Api) -> None:
    response = guarded.client.get("/api/v1/runs/research-1/stream", params={"token": TOKEN})
    assert response.status_code == 200 and "event: end" in response.text


def test_without_a_token_only_loopback_host_names_are_served(
    make_client: Callable[..., Api],
) -> None:
    api = make_client(allowed_hosts=["127.0.0.1", "localhost"])
    assert api.client.get("/api/v1/runs", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert api.client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    rebound = api.client.get("/api/v1/runs", headers={"Host": "evil.example:8765"})
    assert rebound.status_code == 400


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.4", False), ("::", False),
    ("example.com", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_without_a_token_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PONDER_VIEW_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exc:
        view(db="memory://", host="0.0.0.0", port=8765, token=None)
    assert exc.value.code == 2
    assert "--token" in capsys.readouterr().err


def _view(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.viewer", *args], capture_output=True, text=True,
        timeout=60, env={**os.environ, **(env or {})}, cwd=Path(__file__).parents[2],
    )


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    # 99999 was served as 99999 - 65536 = 34463
    done = _view("--port", port)
    assert done.returncode == 2
    assert "Invalid value for '--port'" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_store_is_reported_at_start_with_a_nonzero_exit(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    done = _view("--db", str(blocker / "traces.db"), "--port", "0")
    assert done.returncode == 1
    assert "cannot open the trace store" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("how", ["--db", "env"])
def test_a_sqlite_file_that_does_not_exist_is_named_not_created(tmp_path: Path, how: str) -> None:
    missing = tmp_path / "typo" / "traces.db"
    if how == "--db":
        done = _view("--db", str(missing), "--port", "0")
    else:
        done = _view("--port", "0", env={"PONDER_DB_URL": f"sqlite:///{missing}"})
    assert done.returncode == 1
    assert f"there is no SQLite file {missing}" in done.stderr
    assert ("--db" if how == "--db" else "$PONDER_DB_URL") in done.stderr
    assert "Traceback" not in done.stderr
    assert not missing.exists() and not missing.parent.exists()


def _serve_once(db: str, path: str, host: str = "127.0.0.1") -> tuple[Any, str, int]:
    """Start ``ponder view --db DB`` on a free port of ``host``, wait up to 30 s for
    ``GET path`` to answer, then stop it: the answer's JSON, the viewer's stderr, the port."""
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.viewer", "--db", db, "--host", host,
         "--port", str(port)],
        stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}{path}") as r:
                    answer = json.load(r)
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    return answer, err, port


def test_a_read_only_sqlite_file_is_served(tmp_path: Path) -> None:
    import stat

    path = tmp_path / "a colleague's #1 trace?.db"  # characters a file: URI must escape

    async def create() -> None:
        async with await open_store(str(path)) as store:
            await store.append(research_trace("shared").events)

    anyio.run(create)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        answer, err, _ = _serve_once(str(path), "/api/v1/runs/shared")
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert answer["run"]["status"] == "succeeded"
    assert f"trace store: {path}, read-only" in err


def test_an_outdated_store_is_left_as_it_is_and_the_upgrade_command_named(
    sql_url: str, add_test_revision: Callable[[], None], make_run: Any,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    async def serve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the viewer opened an outdated store and served it")

    monkeypatch.setattr(uvicorn.Server, "serve", serve)

    async def create() -> None:
        async with await open_store(sql_url) as store:
            await store.append(make_run("old-run"))

    anyio.run(create)
    add_test_revision()  # the store is now one revision behind this Ponder
    with pytest.raises(SystemExit) as exc:
        view(db=sql_url, host="127.0.0.1", port=0, token=None)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert f"'{HEAD}'" in err and "ponder db upgrade" in err and "Traceback" not in err

    async def still_outdated() -> None:
        with pytest.raises(StoreOutdated):
            await SqlStore(sql_url, auto_upgrade=False).open()

    anyio.run(still_outdated)


def test_an_unreachable_server_is_reported_at_start(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    done = _view("--db", "postgresql+psycopg://ponder@127.0.0.1:1/ponder", "--port", "0")
    assert done.returncode == 1
    assert "cannot open the trace store" in done.stderr and "127.0.0.1" in done.stderr


def test_a_port_in_use_is_reported_before_the_viewer_claims_to_serve(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _view("--db", "memory://", "--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in done.stderr
    assert "--port" in done.stderr and "Ponder viewer on" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_host_that_does_not_resolve_is_reported(tmp_path: Path) -> None:
    done = _view("--db", "memory://", "--host", "no-such-host.invalid", "--port", "0",
                 env={"PONDER_VIEW_TOKEN": "t"})
    assert done.returncode == 1
    assert "cannot listen on no-such-host.invalid" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])  # all of 127/8 is loopback
def test_the_command_serves_a_store_until_stopped(tmp_path: Path, host: str) -> None:
    async def create() -> None:
        await (await open_store(str(tmp_path / "t.db"))).close()

    anyio.run(create)
    answer, err, port = _serve_once(str(tmp_path / "t.db"), "/api/v1/runs", host)
    assert isinstance(answer.pop("now"), float)
    assert answer == {"runs": [], "limit": 50, "offset": 0, "has_more": False,
                      "interrupted": [], "resume": {}, "executions": {}}
    assert f"http://{host}:{port}/" in err and "t.db" in err


@pytest.mark.parametrize("ask_first", [True, False])
def test_ctrl_c_stops_the_command_with_status_130(tmp_path: Path, ask_first: bool) -> None:
    # as `ponder run` and a shell report an interrupted command; pressed as soon as the
    # viewer says where it serves (it serves then), it stops it cleanly too
    import json
    import signal
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.viewer", "--db", "memory://", "--port", "0"],
        stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert "Ctrl-C to stop" in line, line
        if ask_first:
            url = line.split()[3]
            with urllib.request.urlopen(url + "api/v1/runs", timeout=10) as answer:
                assert json.load(answer)["runs"] == []
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "ERROR" not in err


def test_a_database_without_a_trace_store_is_named_not_given_one(tmp_path: Path) -> None:
    """Another program's SQLite file (or an empty database): the viewer created Ponder's
    tables in it and showed a store of no runs."""
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    done = _view("--db", str(other), "--port", "0")
    assert done.returncode == 1
    assert f"no trace store in SQLite file {other}" in done.stderr
    assert "Traceback" not in done.stderr
    with sqlite3.connect(other) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["notes"]
