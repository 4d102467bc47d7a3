"""Fixtures of the trace store tests: the backends, a throwaway PostgreSQL, event factories.

PostgreSQL comes from ``PONDER_TEST_PG_URL`` when set (an admin URL; each test gets
a fresh database on it), else from a cluster started here with ``initdb``/``pg_ctl``
on 127.0.0.1 and a free port. Without either, the postgres cases are skipped, unless
``PONDER_REQUIRE_PG`` is set, when they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orchestrator.runtime import events as ev
from orchestrator.store import RawEvent, StoredEvent, TraceStore, _migrate, open_store

PG_USER = "ponder"
_RUN_AS = "ponder-test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- PostgreSQL ----------------------------------------------------------------------


@dataclass
class PgServer:
    """A PostgreSQL server to test against, or why there is none."""

    admin_url: str | None
    reason: str = ""

    def require(self) -> str:
        if self.admin_url is not None:
            return self.admin_url
        if os.environ.get("PONDER_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is required (PONDER_REQUIRE_PG) but {self.reason}")
        pytest.skip(f"no PostgreSQL: {self.reason} (set PONDER_TEST_PG_URL to use a server)")


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_user() -> tuple[int, int] | None:
    """The uid/gid to run the server as (PostgreSQL refuses root), None when not root.

    Debian's ``postgres`` user when there is one, else a system user ``ponder-test``
    created for the purpose.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _RUN_AS):
        try:
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _RUN_AS],
        check=True,
        capture_output=True,
    )
    entry = pwd.getpwnam(_RUN_AS)
    return entry.pw_uid, entry.pw_gid


class _Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ponder-pg-"))
        self.ids = _service_user()
        if self.ids is not None:
            os.chown(self.root, *self.ids)

    def _run(self, *args: str) -> None:
        kwargs: dict[str, Any] = {}
        if self.ids is not None:
            kwargs = {"user": self.ids[0], "group": self.ids[1], "extra_groups": []}
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=60,
            **kwargs,
        )

    def start(self) -> str:
        data = self.root / "data"
        self._run(
            "initdb", "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        last: Exception | None = None
        for _ in range(3):
            port = _free_port()
            options = (
                f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "log"),
                          "-o", options, "-w", "-t", "30", "start")  # fmt: skip
            except subprocess.CalledProcessError as exc:  # the port was taken meanwhile
                last = exc
                continue
            return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/postgres"
        raise RuntimeError(f"pg_ctl start failed: {last}")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("PONDER_TEST_PG_URL")
    if url:
        yield PgServer(url)
        return
    bindir = _pg_bindir()
    if bindir is None:
        yield PgServer(None, "initdb/pg_ctl not found (apt-get install postgresql)")
        return
    cluster = _Cluster(bindir)
    try:
        admin_url = cluster.start()
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        cluster.stop()
        yield PgServer(None, f"could not start a throwaway cluster: {exc} {detail}".strip())
        return
    try:
        yield PgServer(admin_url)
    finally:
        cluster.stop()


def _sync_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql+psycopg").render_as_string(False)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database (psycopg URL), dropped afterwards."""
    admin = pg_server.require()
    name = "ponder_test_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(_sync_url(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(_sync_url(admin)).set(database=name).render_as_string(False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


# -- schema revisions ---------------------------------------------------------------

#: the newest real revision, on which the test revision goes
HEAD = _migrate.head_revision()
TEST_REVISION_ID = "9999_test"
_TEST_REVISION = f'''"""Test-only revision on top of {HEAD}."""
import sqlalchemy as sa
from alembic import op

revision = "{TEST_REVISION_ID}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_kind_test", "events", ["kind"])
    op.add_column("runs", sa.Column("note_test", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "note_test")
    op.drop_index("ix_events_kind_test", "events")
'''


@pytest.fixture
def add_test_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to give Ponder's migrations a further revision, '9999_test': a store
    made before is then at an older revision (:data:`HEAD`)."""

    def add() -> None:
        copy = tmp_path / "migrations"
        shutil.copytree(_migrate.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
        (copy / "versions" / f"{TEST_REVISION_ID}.py").write_text(_TEST_REVISION)
        monkeypatch.setattr(_migrate, "MIGRATIONS_DIR", copy)

    return add


# -- the backends --------------------------------------------------------------------

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres-asyncpg", marks=pytest.mark.postgres),
]
SQL_BACKENDS = BACKENDS[1:]


def _url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'traces' / 'ponder.db'}"
    url: str = request.getfixturevalue("pg_url")
    if backend == "postgres-asyncpg":
        return sa.make_url(url).set(drivername="postgresql+asyncpg").render_as_string(False)
    return url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each backend."""
    return _url_for(request.param, request, tmp_path)


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty SQL database of each SQL backend."""
    return _url_for(request.param, request, tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[TraceStore]:
    """An opened, empty store of each backend."""
    async with await open_store(store_url) as opened:
        yield opened


# -- events --------------------------------------------------------------------------

EventFactory = Callable[..., list[StoredEvent]]


def full_run(
    run_id: str,
    *,
    workflow: str = "wf",
    started: float = 1_000.0,
    status: str | None = "succeeded",
    parent_run_id: str | None = None,
    parent_attempt: int | None = None,
    unknown_kind: bool = False,
) -> list[StoredEvent]:
    """A run exercising every event kind: a retried step, a failed one, a skipped
    one, a cancelled one and a planner-added one. ``status=None``: still running.
    With ``parent_run_id``, its step ``p`` started the run when ``parent_attempt`` is
    given (a sub-workflow's run), else the run is a fork of it from ``p``."""
    t = started
    usage = ev.UsageModel(prompt_tokens=10, completion_tokens=5)
    items: list[Any] = [
        ev.RunStarted(
            run_id=run_id, seq=0, ts=t, workflow=workflow, inputs={"q": "why?", "n": 3},
            spec={"name": workflow, "steps": [{"id": "plan", "kind": "plan"},
                                              {"id": "a", "kind": "llm"}]},
            source="wf.yaml", parent_run_id=parent_run_id,
            parent_step_id="p" if parent_run_id else None, parent_attempt=parent_attempt,
        ),
        ev.StepScheduled(run_id=run_id, seq=1, ts=t + 1, step_id="plan", step_kind="plan",
                         pool="llm", priority=2.5),
        ev.StepStarted(run_id=run_id, seq=2, ts=t + 2, step_id="plan", step_kind="plan",
                       attempt=1, input={"prompt": "plan it ✓"}),
        ev.StepRetrying(run_id=run_id, seq=3, ts=t + 3, step_id="plan", attempt=1,
                        error="timeout", error_type="StepTimeout", delay_s=0.5),
        ev.StepStarted(run_id=run_id, seq=4, ts=t + 4, step_id="plan", step_kind="plan",
                       attempt=2, input={"prompt": "plan it ✓"}),
        ev.StepSucceeded(run_id=run_id, seq=5, ts=t + 5, step_id="plan", attempt=2,
                         output={"plan": ["b"], "nested": {"x": [1, 2.5, None, True]}},
                         raw="b", usage=usage, latency_s=1.0, meta={"model": "m"}),
        ev.GraphPatched(run_id=run_id, seq=6, ts=t + 6, source_step="plan", reason="plan",
                        steps=[{"id": "b", "kind": "tool", "deps": ["plan"], "parent": "plan",
                                "spec": {"tool": "calc"}}]),
        ev.StepStarted(run_id=run_id, seq=7, ts=t + 7, step_id="b", step_kind="tool",
                       attempt=1, input={"args": {"x": 1}}),
        ev.StepFailed(run_id=run_id, seq=8, ts=t + 8, step_id="b", attempt=1, error="boom",
                      error_type="ToolError", usage=ev.UsageModel()),
        ev.StepSkipped(run_id=run_id, seq=9, ts=t + 9, step_id="c", reason="dep failed",
                       cause_step="b"),
        ev.StepCancelled(run_id=run_id, seq=10, ts=t + 10, step_id="a", attempt=1,
                         usage=ev.UsageModel(prompt_tokens=1, completion_tokens=2)),
    ]  # fmt: skip
    if unknown_kind:
        items.append(
            RawEvent(
                run_id=run_id,
                seq=len(items),
                ts=t + 11,
                kind="future_kind",
                answer=42,
                nested={"k": ["v"]},
            )
        )  # type: ignore[call-arg]
    if status is not None:
        items.append(
            ev.RunFinished(run_id=run_id, seq=len(items), ts=t + 12, status=status,
                           output={"answer": 42}, error="boom" if status == "failed" else None,
                           usage=ev.UsageModel(prompt_tokens=11, completion_tokens=7),
                           duration_s=12.0)
        )  # fmt: skip
    return items


def linear_run(run_id: str, n_events: int, *, started: float = 1_000.0) -> list[StoredEvent]:
    """``run_started``, then step events, then ``run_finished``: ``n_events`` in all."""
    items: list[StoredEvent] = [
        ev.RunStarted(run_id=run_id, seq=0, ts=started, workflow="lin", inputs={})
    ]
    for seq in range(1, n_events - 1):
        items.append(
            ev.StepSucceeded(run_id=run_id, seq=seq, ts=started + seq, step_id=f"s{seq}",
                             attempt=1, output={"i": seq})
        )  # fmt: skip
    items.append(
        ev.RunFinished(run_id=run_id, seq=n_events - 1, ts=started + n_events, status="succeeded")
    )
    return items


def dumped(events: list[StoredEvent]) -> list[dict[str, Any]]:
    """Events as comparable JSON values."""
    return [e.model_dump(mode="json") for e in events]


@pytest.fixture
def make_run() -> EventFactory:
    return full_run


@pytest.fixture
def make_linear_run() -> EventFactory:
    return linear_run


@pytest.fixture
def as_json() -> Callable[[list[StoredEvent]], list[dict[str, Any]]]:
    return dumped


async def recorded_with_child(tmp_path: Path, main: str, subs: dict[str, str]
                              ) -> tuple[Any, Any, Any, str]:
    """Run the workflow ``main`` (its text), whose one step runs a sub-workflow (``subs``:
    file name -> text, written beside it), recording every run in a MemoryStore.

    :returns: the run's result, the recorder, the registry it ran with, the child's id.
    """
    from orchestrator.runtime.engine import compile_graph, execute
    from orchestrator.runtime.registry import Registry
    from orchestrator.spec.loader import load_yaml
    from orchestrator.store import MemoryStore, StoreHook

    for name, text in subs.items():
        (tmp_path / name).write_text(text)
    wf = tmp_path / "main.yaml"
    wf.write_text(main)
    registry = Registry.default()
    spec, smap = load_yaml(wf)
    graph = compile_graph(spec, smap, registry=registry, base_dir=tmp_path)
    recorder = MemoryStore()
    whole = await execute(graph, {}, registry=registry, hooks=[StoreHook(recorder)],
                          source=str(wf))
    (child_id,) = [r.id for r in await recorder.list_runs() if r.id != whole.run_id]
    return whole, recorder, registry, child_id
