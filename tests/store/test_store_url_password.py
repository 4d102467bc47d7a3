"""A store URL's password never shows in a message, however the URL is written: escaped,
with an unescaped ``@`` (refused as ambiguous, naming %40), in the query, or not at all."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.errors import ConfigError, StoreError
from orchestrator.store import StoreUnavailable, open_store
from orchestrator.store._url import hide_password

pytestmark = pytest.mark.anyio

# the parts of a password that must never show: around and between its '@'s
SECRET_PARTS = ("Xq1", "Zk2", "Wm3")
UNESCAPED = "Xq1@Zk2@Wm3"
ESCAPED = UNESCAPED.replace("@", "%40")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def no_secret(message: str) -> None:
    for part in SECRET_PARTS:
        assert part not in message, message


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("/data/p@1.db", "/data/p@1.db"),
        ("sqlite:////data/a@b@c.db", "sqlite:////data/a@b@c.db"),
        ("memory://", "memory://"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        (f"postgresql://u:{ESCAPED}@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u:{UNESCAPED}@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:a/b?c@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db?password=Xq1&sslmode=disable",
         "postgresql://u@h/db?password=***&sslmode=disable"),
        ("postgresql://u@h/db?sslmode=disable&sslpassword=Xq1",
         "postgresql://u@h/db?sslmode=disable&sslpassword=***"),
        ("postgresql:///db?host=/run/p@g", "postgresql:///db?host=/run/p@g"),
    ],
)
def test_a_url_is_shown_without_its_password(given: str, shown: str) -> None:
    assert hide_password(given) == shown


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_an_unescaped_at_is_refused_as_ambiguous_before_connecting(driver: str) -> None:
    # without the check the host was 'Zk2@Wm3@127.0.0.1', named by the resolver's error
    url = f"postgresql+{driver}://ponder:{UNESCAPED}@127.0.0.1:{_closed_port()}/traces"
    with pytest.raises(ConfigError) as info:
        await open_store(url)
    message = str(info.value)
    no_secret(message)
    assert "ambiguous" in message and "%40" in message
    assert f"postgresql+{driver}://ponder:***@127.0.0.1:" in message


async def test_an_unescaped_at_before_a_malformed_port_is_refused_so() -> None:
    # SQLAlchemy took 'Zk2' for the host and 'Wm3@127.0.0.1' for the port, and said so
    with pytest.raises(ConfigError) as info:
        await open_store("postgresql://ponder:Xq1@Zk2:Wm3@127.0.0.1/traces")
    no_secret(str(info.value))
    assert "%40" in str(info.value)


async def test_a_malformed_url_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        await open_store("postgresql://ponder:Xq1@127.0.0.1:port/traces")
    assert "postgresql://ponder:***@127.0.0.1:port/traces" in str(info.value)
    no_secret(str(info.value))


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
@pytest.mark.parametrize("auth", [f"ponder:{ESCAPED}@", "ponder@"])
@pytest.mark.parametrize("query", ["", f"?password={ESCAPED}"])
async def test_an_unreachable_server_is_named_without_the_password(
        driver: str, auth: str, query: str) -> None:
    if driver == "asyncpg" and query:
        query = ""  # asyncpg takes no password from the query; the URL's own is tested
    url = f"postgresql+{driver}://{auth}127.0.0.1:{_closed_port()}/traces{query}"
    with pytest.raises(StoreUnavailable) as info:
        await open_store(url)
    message = str(info.value)
    no_secret(message)
    assert info.value.url is not None
    no_secret(info.value.url)
    assert "cannot reach" in message and "127.0.0.1" in message


async def test_a_sqlite_path_may_hold_at_signs(tmp_path: Path) -> None:
    path = tmp_path / "a@b@c.db"
    async with await open_store(f"sqlite:///{path}") as store:
        assert await store.list_runs() == []
    assert path.exists()


async def test_every_sql_backend_names_itself_without_the_password(sql_url: str) -> None:
    # the test servers trust local connections, so any password opens the store
    parsed = sa.make_url(sql_url)
    if parsed.get_backend_name() == "postgresql":
        sql_url = parsed.set(password=UNESCAPED).render_as_string(hide_password=False)
        assert ESCAPED in sql_url
    store = await open_store(sql_url)
    await store.close()
    with pytest.raises(StoreError) as info:
        await store.list_runs()
    no_secret(str(info.value))
    assert "is closed" in str(info.value)


# -- through the CLI -------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("command", [["runs"], ["db", "upgrade"], ["show", "r1"]])
def test_the_cli_refuses_an_unescaped_at_in_one_line(command: list[str]) -> None:
    url = f"postgresql+psycopg://ponder:{UNESCAPED}@127.0.0.1:{_closed_port()}/traces"
    result = invoke(*command, "--db", url)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "ambiguous" in result.stderr and "%40" in result.stderr
    assert "Traceback" not in result.stderr
    no_secret(result.stdout + result.stderr)


@pytest.mark.parametrize("auth", [f"ponder:{UNESCAPED}@", f"ponder:{ESCAPED}@"])
def test_the_cli_json_error_holds_no_password(auth: str) -> None:
    url = f"postgresql+psycopg://{auth}127.0.0.1:{_closed_port()}/traces?password={ESCAPED}"
    result = invoke("runs", "--json", "--db", url)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["kind"] in ("config", "store")
    no_secret(result.stdout + result.stderr)
