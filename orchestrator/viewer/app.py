"""The viewer's FastAPI application: a read-only JSON API, an SSE stream, two pages.

Routes::

    GET /                              the runs page
    GET /runs/{id}                     a run's page (404 page for an unknown id)
    GET /static/...                    the pages' scripts and styles
    GET /api/v1/openapi.json           the API's OpenAPI document
    GET /api/v1/runs                   runs, newest first, filtered, one page
    GET /api/v1/runs/{id}              one run folded, with its DAG and child runs
    GET /api/v1/runs/{id}/events       its events after a seq, a page of at most 5,000
                                       (``step_id``: only that step's)
    GET /api/v1/runs/{id}/keyframe     the replay state at or before an event (run page)
    GET /api/v1/runs/{id}/stream       its new events as Server-Sent Events

A run id may hold any character, ``/`` included: in the API's paths it is one
percent-encoded segment (``a%2Fevents`` is the run ``a/events``; ``a/events`` the events
of the run ``a``). The run routes are matched on the raw path for that
(:class:`_RunIdPaths`), since the decoded path no longer tells the two apart.

Where a route takes a run id it also takes a unique start of one, as the CLI does
(``ponder runs`` shows ids shortened): the page redirects to the run's own address, the
API answers for the run (its ``run.id`` / ``run_id`` say which). A start that several
runs' ids share is answered 409 with some of them (``matches``), an unknown id 404.

Nothing here writes to the store.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

import anyio
import pydantic_core
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticSerializationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.store import (
    AmbiguousRunId,
    RunFilter,
    RunInfo,
    RunNotFound,
    RunRecord,
    RunWriters,
    StoredEvent,
    StoreError,
    resume_target,
)
from orchestrator.store._liveness import list_running
from orchestrator.viewer._cache import RUN_KINDS, RunCache
from orchestrator.viewer._executions import Execution, Executions
from orchestrator.viewer._graph import GraphNode, GraphStep
from orchestrator.viewer._preview import PREVIEW_CHARS, preview_json
from orchestrator.viewer._reader import ResolvesRunIds, TraceReader
from orchestrator.viewer._replay import KEYFRAME_EVERY
from orchestrator.viewer._security import SecurityHeaders, TokenGate

__all__ = [
    "API_PREFIX", "EVENTS_PAGE_MAX", "EventsPage", "KeyframePage", "RunDetail", "RunsPage",
    "create_app",
]

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).parent / "static"
EVENTS_PAGE_MAX = 5000
"""The most events one ``GET /api/v1/runs/{id}/events`` returns (its default ``limit``)."""
_MAX_PAGE = 500
_SSE_BATCH = 1000
"""The most events in one message of a live stream."""
_WRITER_CHECK_S = 2.0
"""How long a live stream goes without events before it checks whether the run's
process is gone (then it says ``interrupted`` and closes)."""
_NO_STORE = {"cache-control": "no-store"}
_NOW_DOC = ("The viewer's clock when this was read (Unix seconds), which a run's times are "
            "written in: a running run's duration counts to it (plus the time since), not "
            "to the client's clock nor to the run's last event.")
_LAST_EVENT_ID = re.compile(r"-?[0-9]{1,30}")
"""A Last-Event-ID the stream resumes after (the viewer sends seqs); others are ignored."""
_NO_NUL = r"^[^\x00]*$"
"""The filters' pattern: no NUL, which PostgreSQL's text cannot hold (nor store a run with)."""
_PREVIEW_DOC = (f"Cut each of a step's input, output and raw texts longer than {PREVIEW_CHARS:,} "
                "characters to a preview ending '… [truncated, N bytes]', the event's "
                "`truncated` giving each cut field's full size in bytes: what the run page "
                "reads first (a step's own events, `step_id=`, are never cut).")
_OFFSET_MAX = 2**31 - 1
"""The largest ``offset`` of a runs page (SQLite's and PostgreSQL's ``OFFSET`` overflow
somewhere above)."""


class RunsPage(BaseModel):
    """One page of runs, newest first."""

    model_config = ConfigDict(extra="forbid")

    runs: list[RunInfo]
    limit: int
    offset: int
    has_more: bool = Field(description="Whether runs beyond this page match the filters.")
    interrupted: list[str] = Field(
        default_factory=list,
        description="Ids of the runs on this page stored as running whose process, on this "
        "host, is gone: resume them with `ponder resume`. Computed when read, never stored.",
    )
    resume: dict[str, str] = Field(
        default_factory=dict,
        description="For each interrupted sub-workflow's run on this page, the run above it "
        "whose `ponder resume` continues it (the others are resumed by their own id).",
    )
    executions: dict[str, Execution] = Field(
        default_factory=dict,
        description="For each run on this page stored as running, its latest execution's "
        "start and the time its earlier ones ran (an interrupted run's also its last "
        "event's time, `ended_at`, where its duration stops): a resumed run's duration "
        "leaves out the downtime between them, as on its run page.",
    )
    now: float = Field(default_factory=time.time, description=_NOW_DOC)


class RunDetail(BaseModel):
    """One run, folded from its events, with its DAG and its child runs."""

    model_config = ConfigDict(extra="forbid")

    run: RunRecord = Field(description="The folded run; `steps` is empty when steps=false.")
    graph: list[GraphStep] = Field(description="Every step as a DAG node, dependencies included.")
    children: list[RunInfo] = Field(description="Runs started by this run's steps.")
    last_seq: int = Field(description="The seq of the last event folded in.")
    finished: bool = Field(description="Whether the run's last run-level event is run_finished.")
    interrupted: bool = Field(
        False, description="Stored as running, but its process on this host is gone: resume "
        "it with `ponder resume`. Computed when read, never stored.",
    )
    resume: str | None = Field(
        None, description="For an interrupted run, the run to resume to continue it: its own "
        "id, or for a sub-workflow's run the run above it, whose resume continues it.",
    )
    cut: dict[str, tuple[int, int]] = Field(
        default_factory=dict, description="For an interrupted run: each plan step's cut "
        "attempt's tokens (prompt, completion), its recorded `plan_call` events with no "
        "event ending the attempt, which `run` counts on that step and in the total. The "
        "run page, folding the events itself, adds them at the run's last event "
        "(`last_seq`). Empty otherwise.",
    )
    now: float = Field(default_factory=time.time, description=_NOW_DOC)


class EventsPage(BaseModel):
    """A run's events in seq order."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    events: list[StoredEvent]
    last_seq: int | None = Field(description="The seq of the last event returned, if any.")
    has_more: bool = Field(
        description="Whether events after `last_seq` were stored when this was read: ask "
        "for them with `after_seq` = `last_seq`.",
    )
    finished: bool = Field(description="Whether the run had finished when this was read.")


class KeyframePage(BaseModel):
    """The run page's replay state of a run after its events up to ``keyframe.index``."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    n_events: int = Field(description="The run's events stored when this was read.")
    last_seq: int | None = Field(description="The seq of the last of them.")
    finished: bool = Field(description="Whether the run had finished when this was read.")
    keyframe_every: int = Field(
        description=f"Events between two keyframes ({KEYFRAME_EVERY}).")
    keyframe: dict[str, Any] = Field(
        description="`index` and `seq` of the last event folded in (-1 and null: none), "
        "its `ts`, `kind` and `step_id`, `run` (status, workflow, times, tokens), `t0` "
        "(the first event's time: times are seconds after it), `strings` (what the "
        "steps' string fields index) and `steps`: one array per step, in order of first appearance, as "
        "`orchestrator/viewer/_replay.py` and the page's fold.js lay it out. A step's "
        "input, output and error texts are not in it: read them with "
        "`/events?step_id=`.")
    events: list[dict[str, Any]] | None = Field(
        None, description="With `events_to`: the events after the keyframe up to that "
        "one, each as the trace store holds it (absent without it).")
    has_more: bool | None = Field(
        None, description="With `events_to`: whether more events follow them.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong token (when the viewer has one)."},
    404: {"description": "No event of this run is stored."},
    503: {"description": "The trace store could not be read."},
}
_RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"description": "No run's id is it or starts with it."},
    409: {"description": "Several runs' ids start with it: `{detail, matches}`, `matches` "
                         "some of them (give more of the id)."},
}


def _page(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


_PLACEHOLDER = re.compile(r"\{\{(title|heading|id|what)\}\}")


def _notice_page(status: int, title: str, heading: str, what_html: str,
                 *, page_id: str) -> HTMLResponse:
    """The notice page (``notfound.html``): its tab's ``title`` and its ``heading``,
    plain text (escaped here), and ``what_html`` (escaped by the caller); ``page_id``:
    its ``main`` element's id (tests and styles find the notice by it)."""
    values = {"title": html.escape(title, quote=True), "heading": html.escape(heading),
              "id": page_id, "what": what_html}
    # one pass: a run id that reads like a placeholder stays as it is
    body = _PLACEHOLDER.sub(lambda m: values[m.group(1)], _page("notfound.html"))
    return HTMLResponse(body, status_code=status, headers=_NO_STORE)


def _page_url(run_id: str) -> str:
    """The run page's address (as the runs page links it)."""
    return "/runs/" + quote(run_id, safe="")


_AMBIGUOUS_SHOWN = 5
"""The runs an ambiguous start's page names (``matches`` may hold more)."""


def _ambiguous_page(exc: AmbiguousRunId) -> HTMLResponse:
    shown = exc.matches[:_AMBIGUOUS_SHOWN]
    more = ", ..." if len(exc.matches) > len(shown) else ""
    links = ", ".join(f'<a href="{html.escape(_page_url(m), quote=True)}"><code>'
                      f"{html.escape(m, quote=True)}</code></a>" for m in shown)
    what = ("Several runs' ids start with <code>" + html.escape(exc.run_id, quote=True)
            + f"</code>: {links}{more}. Give more of the id.")
    title = f"Ambiguous run id {exc.run_id}: {', '.join(shown)}{more}"
    return _notice_page(409, title, "409: ambiguous run id", what, page_id="ambiguous")


def _not_found_page(run_id: str) -> HTMLResponse:
    what = "The trace store holds no run <code>" + html.escape(run_id, quote=True) + "</code>."
    return _notice_page(404, f"Run not found: {run_id}", "404: not found", what,
                        page_id="not-found")


def _store_down_page(run_id: str, exc: StoreError) -> HTMLResponse:
    what = "<code>" + html.escape(str(exc), quote=True) + "</code> Reload when it answers."
    return _notice_page(503, f"Run {run_id}: the trace store cannot be read",
                        "503: the trace store cannot be read", what, page_id="store-down")


_RUNS_PATH = f"{API_PREFIX}/runs/"
_RUN_SUFFIXES = ("/events", "/stream", "/keyframe")


def _run_route_path(rest: str) -> str:
    """The path the run routes match for ``/api/v1/runs/`` + ``rest``, a raw (percent-
    encoded) path: the run id quoted whole, followed by ``/events`` or ``/stream`` when
    ``rest`` ends with one of them (or ``/keyframe``) written as it is.

    ``a%2Fevents`` is the run ``a/events``; ``a%2Fevents/events`` its events; ``a/events``
    the events of the run ``a`` (an id written with a bare ``/`` still works, unless it
    ends with one of the suffixes).
    """
    suffix = next((s for s in _RUN_SUFFIXES if rest.endswith(s) and len(rest) > len(s)), "")
    run_id = unquote(rest[: len(rest) - len(suffix)])
    return _RUNS_PATH + quote(run_id, safe="") + suffix


class _RunIdPaths:
    """ASGI middleware: route the API's run paths on the raw path, where an encoded ``/``
    in a run id (``%2F``) still differs from the ``/`` before ``events`` or ``stream``.

    The run routes then see the id quoted whole (:func:`_run_route_path`) and unquote it
    (:func:`_run_id`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(_RUNS_PATH):
            raw = scope.get("raw_path")
            if isinstance(raw, bytes) and raw.startswith(_RUNS_PATH.encode()):
                rest = raw.decode("latin-1")[len(_RUNS_PATH):]
            else:  # a server that gives no raw path: as ambiguous as the decoded path
                rest = quote(path[len(_RUNS_PATH):], safe="/")
            scope = {**scope, "path": _run_route_path(rest)}
        await self.app(scope, receive, send)


def _run_id(
    run_id: Annotated[str, PathParam(
        description="The run id, or a start of it that no other run's id has (as "
                    "`ponder runs` shows them), percent-encoded as one path segment (`/` "
                    "as `%2F`)."
    )],
) -> str:
    """The run id of a run route (quoted whole by :class:`_RunIdPaths`)."""
    return unquote(run_id)


RunId = Annotated[str, Depends(_run_id)]


async def _resolve(store: TraceReader, run_id: str) -> str:
    """The id of the run ``run_id`` names: itself when stored, else the one run whose id
    starts with it (when the store resolves ids, see :class:`ResolvesRunIds`).

    :raises RunNotFound: when no run's id is it or starts with it.
    :raises AmbiguousRunId: when several runs' ids start with it.
    """
    # a run stored without run_started (an old trace) has no row, only events
    if await store.run_info(run_id) is not None or await store.events_page(run_id, limit=1):
        return run_id
    # no stored id holds a NUL (PostgreSQL's text cannot), and filtering by one fails there
    if isinstance(store, ResolvesRunIds) and "\x00" not in run_id:
        return await store.resolve_run_id(run_id)
    raise RunNotFound(run_id)


async def _resolved(run_id: RunId, request: Request) -> str:
    """The run id of a run route, a unique start of it resolved (see :func:`_resolve`)."""
    reader: TraceReader = request.app.state.reader
    return await _resolve(reader, run_id)


#: the API's run routes' run id: a unique start of one answers for its run (no redirect:
#: a JSON client that follows none still gets the answer, which names the run)
Resolved = Annotated[str, Depends(_resolved)]


def _sse(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def create_app(
    store: TraceReader,
    token: str | None = None,
    *,
    allowed_hosts: Sequence[str] | None = None,
    poll_interval_s: float = 0.25,
    heartbeat_s: float = 15.0,
) -> FastAPI:
    """Build the viewer over an opened trace store.

    :param store: where runs are read from (any :class:`~orchestrator.store.TraceStore`);
        the caller opens and closes it.
    :param token: when given, every request must carry it (see
        :class:`~orchestrator.viewer._security.TokenGate`), else it is answered 401.
    :param allowed_hosts: when given, requests whose ``Host`` is not one of these are
        refused (400); ``ponder view`` passes the loopback names when it has no token,
        so that a web page cannot reach the viewer through DNS rebinding.
    :param poll_interval_s: how often a live stream asks the store for new events.
    :param heartbeat_s: how often an idle stream sends a comment to keep proxies open.
    :returns: the ASGI application.
    """
    cache = RunCache(store)
    writers = RunWriters(store)  # each running run's latest writer, read incrementally
    # and its executions' times; a run deleted meanwhile is forgotten by both
    executions = Executions(store, forget=writers.forget)
    app = FastAPI(
        title="Ponder trace viewer",
        version="1",
        summary="Read-only access to the runs in a Ponder trace store.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # the Swagger page loads its assets from a CDN; the viewer works offline
        redoc_url=None,
    )
    app.state.reader = store

    @app.exception_handler(RunNotFound)
    async def _run_not_found(request: Request, exc: RunNotFound) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(AmbiguousRunId)
    async def _ambiguous_run_id(request: Request, exc: AmbiguousRunId) -> Response:
        return JSONResponse({"detail": str(exc), "matches": exc.matches}, status_code=409)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if exc.status_code == 404 and not path.startswith(("/api/", "/static/")):
            what = "There is no page <code>" + html.escape(path, quote=True) + "</code>."
            return _notice_page(404, "Page not found", "404: not found", what,
                                page_id="not-found")
        return await http_exception_handler(request, exc)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    # -- pages -------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def runs_page() -> HTMLResponse:
        return HTMLResponse(_page("index.html"), headers=_NO_STORE)

    @app.get("/runs/{run_id:path}", include_in_schema=False)
    async def run_page(run_id: str, request: Request) -> Response:
        try:
            full = await _resolve(store, run_id)
        except AmbiguousRunId as exc:
            return _ambiguous_page(exc)
        except RunNotFound:
            return _not_found_page(run_id)
        except StoreError as exc:  # a page, not the API's JSON, for whoever opened it
            return _store_down_page(run_id, exc)
        if full != run_id:  # a start of its id: the page's address names the run
            query = request.url.query
            return RedirectResponse(_page_url(full) + (f"?{query}" if query else ""),
                                    headers=_NO_STORE)
        return HTMLResponse(_page("run.html"), headers=_NO_STORE)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # -- API ---------------------------------------------------------------------------

    @app.get(f"{API_PREFIX}/runs", response_model=RunsPage, responses=_ERRORS, tags=["runs"])
    async def list_runs(
        status: Annotated[
            Literal["running", "interrupted", "succeeded", "failed", "cancelled"] | None,
            Query(description="Only runs with this status: running ones whose process "
                  "is gone are `interrupted`, not `running` (as `ponder runs --status`)."),
        ] = None,
        workflow: Annotated[
            str | None, Query(description="Only runs of this workflow.", pattern=_NO_NUL)
        ] = None,
        parent_run_id: Annotated[
            str | None, Query(description="Only the child runs of this run.", pattern=_NO_NUL)
        ] = None,
        top_level: Annotated[bool, Query(description=
            "Only runs no step of another run started (replays and forks included).")] = False,
        limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=_OFFSET_MAX)] = 0,
    ) -> RunsPage:
        """Runs newest first (by start time), one page of at most ``limit``."""
        flt = RunFilter(
            status=status, workflow=workflow or None, parent_run_id=parent_run_id,
            top_level=top_level,
        )
        if status in ("running", "interrupted"):  # the store keeps no "interrupted"
            runs, interrupted = await list_running(
                store, flt, interrupted=status == "interrupted", limit=limit + 1,
                offset=offset)
        else:
            runs = await store.list_runs(flt, limit=limit + 1, offset=offset)
            interrupted = await writers.interrupted(runs[:limit])
        above = {r.id: await resume_target(store, r.id) for r in runs[:limit]
                 if r.id in interrupted and r.parent_run_id is not None}
        live = await executions.of(runs[:limit], interrupted=interrupted)
        return RunsPage(
            runs=runs[:limit], limit=limit, offset=offset, has_more=len(runs) > limit,
            interrupted=[r.id for r in runs[:limit] if r.id in interrupted],
            resume={k: v for k, v in above.items() if k != v}, executions=live,
        )

    # A run id may hold "/" (the SDK and `ponder import` take any id): _RunIdPaths hands
    # the run routes the id quoted whole, so it is one segment here.

    @app.get(
        f"{API_PREFIX}/runs/{{run_id}}/events", response_model=EventsPage, responses=_RUN_ERRORS,
        tags=["runs"],
    )
    async def get_events(
        run_id: Resolved,
        after_seq: Annotated[
            int | None, Query(description="Only events with a larger seq.")
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=EVENTS_PAGE_MAX, description="At most this many (at most "
                       f"{EVENTS_PAGE_MAX}, the default).")
        ] = EVENTS_PAGE_MAX,
        step_id: Annotated[
            str | None, Query(description="Only the events of this step (those whose "
                              "`step_id` it is): the run page reads a step's input and "
                              "output this way.", pattern=_NO_NUL)
        ] = None,
        preview: Annotated[bool, Query(description=_PREVIEW_DOC)] = False,
    ) -> Response:
        """The run's events in seq order, each as the trace store holds it, one page of at
        most ``limit``: while ``has_more``, ask again with ``after_seq`` = ``last_seq``."""
        # Whether it had finished before the page is read: then a page without more is
        # its last, and a client that stops there misses nothing.
        finished = await _finished(run_id)
        if step_id is not None:
            return await _step_events(run_id, step_id, after_seq, limit, finished)
        page = await store.events_page(run_id, after_seq=after_seq, limit=limit + 1)
        return _events_response(run_id, page[:limit], len(page) > limit, finished,
                                preview=preview)

    async def _step_events(
        run_id: str, step_id: str, after_seq: int | None, limit: int, finished: bool
    ) -> Response:
        """A step's events, read by their seqs (kept by the run's summary), a stretch of
        consecutive seqs at a time."""
        entry = await cache.get(run_id)
        seqs = [q for q in entry.replay.step_seqs(step_id)
                if after_seq is None or q > after_seq][: limit + 1]
        wanted = set(seqs[:limit])
        events: list[StoredEvent] = []
        i = 0
        while i < min(len(seqs), limit):
            j = i + 1
            while j < min(len(seqs), limit) and seqs[j] == seqs[j - 1] + 1:
                j += 1
            page = await store.events_page(run_id, after_seq=seqs[i] - 1, limit=j - i)
            events.extend(e for e in page if e.seq in wanted)
            i = j
        return _events_response(run_id, events, len(seqs) > limit, finished)

    @app.get(
        f"{API_PREFIX}/runs/{{run_id}}/keyframe", response_model=KeyframePage,
        responses=_RUN_ERRORS, tags=["runs"],
    )
    async def get_keyframe(
        run_id: Resolved,
        index: Annotated[
            int | None, Query(ge=-1, description="The event (0-based, in seq order) to "
                              "replay to: the last keyframe at or before it is returned. "
                              "Default: the run's state after every event stored.")
        ] = None,
        events_to: Annotated[
            int | None, Query(ge=0, description="Also send the events after the keyframe "
                              "up to this one (0-based, as `index`; at most "
                              f"{EVENTS_PAGE_MAX}) as `events`, as `/events` would with "
                              "`after_seq` = `keyframe.seq`, `has_more` saying whether "
                              "more follow: what the page replays from the keyframe, "
                              "read in the same request.")
        ] = None,
        preview: Annotated[bool, Query(description="With `events_to`: " + _PREVIEW_DOC)
                           ] = False,
    ) -> Response:
        """What the run page draws of a run after its first events: the last keyframe at
        or before event ``index`` (one is kept every ``keyframe_every`` events), to which
        the page adds the events after ``keyframe.seq`` (``/events?after_seq=``, or
        ``events_to`` here)."""
        entry = await cache.get(run_id)
        replay = entry.replay
        kf = replay.snapshot() if index is None else replay.keyframe_at(index)
        head = json.dumps({"run_id": run_id, "n_events": entry.n_events,
                           "last_seq": entry.last_seq, "finished": entry.finished,
                           "keyframe_every": replay.every})
        body = head[:-1] + ',"keyframe":' + kf.to_json(replay)
        if events_to is not None:
            limit = max(0, min(events_to - kf.index, EVENTS_PAGE_MAX))
            page = await store.events_page(run_id, after_seq=kf.seq, limit=limit + 1)
            body += (',"has_more":' + json.dumps(len(page) > limit) + ',"events":['
                     + ",".join(_event_json(e, preview) for e in page[:limit]) + "]")
        return Response(body + "}", media_type="application/json", headers=_NO_STORE)

    @app.get(
        f"{API_PREFIX}/runs/{{run_id}}/stream",
        responses={
            **_RUN_ERRORS,
            200: {
                "description": (
                    "Server-Sent Events. `events`: a JSON array of new events (the SSE id "
                    "is the last one's seq; reconnecting with Last-Event-ID resumes after "
                    "it). `end`: the run finished; the stream closes. `store_error` "
                    "(`{detail}`): the trace store stopped answering; the stream keeps "
                    "asking it, and says `store_ok` when it answers again. `gone` "
                    "(`{detail}`): the run was deleted; the stream closes. `interrupted` "
                    "(`{last_seq}`): the run is stored as running but its process, on this "
                    "host, is gone (see `RunDetail.interrupted`); the stream closes."
                ),
                "content": {"text/event-stream": {}},
            },
        },
        tags=["runs"],
    )
    async def stream_events(
        run_id: Resolved,
        request: Request,
        after_seq: Annotated[
            int | None, Query(description="Send events with a larger seq (default: all).")
        ] = None,
        preview: Annotated[bool, Query(description=_PREVIEW_DOC)] = False,
    ) -> StreamingResponse:
        """New events of a run as they are stored, until it finishes."""
        await _finished(run_id)  # 404 before the stream starts
        last_event_id = _LAST_EVENT_ID.fullmatch(request.headers.get("last-event-id", ""))
        if last_event_id is not None:
            after_seq = max(after_seq if after_seq is not None else -1,
                            int(last_event_id.group()))
        return StreamingResponse(
            _stream(run_id, after_seq, request, preview),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @app.get(
        f"{API_PREFIX}/runs/{{run_id}}", response_model=RunDetail, responses=_RUN_ERRORS,
        tags=["runs"],
    )
    async def get_run(
        run_id: Resolved,
        steps: Annotated[
            bool, Query(description="Include the folded steps (inputs, outputs...).")
        ] = True,
    ) -> Response:
        """One run folded from its events, its DAG (with the dependencies of declared
        steps computed from their references) and the runs its steps started."""
        entry = await cache.get(run_id, steps=steps)
        graph = entry.graph_nodes()
        record = entry.record() if steps else entry.headline()
        children = await _children(run_id)
        detail = RunDetail(
            run=record, graph=[], children=children, last_seq=entry.last_seq or 0,
            finished=entry.finished, interrupted=entry.interrupted,
            resume=await resume_target(store, run_id) if entry.interrupted else None,
            cut=entry.cut_calls() if entry.interrupted else {},
        )
        # Serialized here: FastAPI would dump, validate and dump again a large run's graph.
        return Response(_detail_json(detail, graph), media_type="application/json",
                        headers=_NO_STORE)

    async def _children(run_id: str) -> list[RunInfo]:
        """Every run started by the run's steps (a map over a sub-workflow: one per item)."""
        flt = RunFilter(parent_run_id=run_id)
        children: list[RunInfo] = []
        while page := await store.list_runs(flt, limit=_MAX_PAGE, offset=len(children)):
            children.extend(page)
            if len(page) < _MAX_PAGE:
                break
        return children

    async def _finished(run_id: str) -> bool:
        """Whether the run's last run-level event is ``run_finished`` (its row says so).

        :raises RunNotFound: when the store holds no event of the run.
        """
        info = await store.run_info(run_id)
        if info is not None:
            return info.status != "running"
        # no row: no run at all, or an old trace without run_started
        if not await store.events_page(run_id, limit=1):
            raise RunNotFound(run_id)
        run_level = await store.events(run_id, kinds=RUN_KINDS)
        return bool(run_level) and run_level[-1].kind == "run_finished"

    async def _stream(
        run_id: str, after_seq: int | None, request: Request, preview: bool
    ) -> AsyncIterator[str]:
        # The writer is usually another process: a database has no portable way to
        # notify readers, so the stream asks for events after the last one it sent, a
        # message of at most _SSE_BATCH at a time (EventSource and proxies buffer a
        # message whole), and keeps none of them.
        yield "retry: 1000\n\n"
        last = after_seq
        quiet = 0.0
        unchecked = 0.0  # seconds without events since its writer was last checked
        down: str | None = None  # why the store cannot be read, while it cannot
        while True:
            more = False
            try:
                # read before the events: a run that had finished has them all stored
                finished = await _finished(run_id)
                page = await store.events_page(run_id, after_seq=last, limit=_SSE_BATCH)
            except RunNotFound as exc:  # deleted (ponder gc) while it was followed
                yield _sse("gone", json.dumps({"detail": str(exc)}))
                return
            except StoreError as exc:
                # A store that stops answering (a server restarting) is said once, then
                # asked again at each poll: the stream goes on where it was when it answers.
                if str(exc) != down:
                    down = str(exc)
                    yield _sse("store_error", json.dumps({"detail": down}))
            else:
                if down is not None:
                    down = None
                    yield _sse("store_ok", "{}")
                if page:
                    last = page[-1].seq
                    quiet = unchecked = 0.0
                    body = ",".join(_event_json(e, preview) for e in page)
                    yield _sse("events", "[" + body + "]", last)
                more = len(page) == _SSE_BATCH
                if finished and not more:
                    yield _sse("end", json.dumps({"last_seq": last}))
                    return
                if not page and unchecked >= _WRITER_CHECK_S:
                    # A run whose process died while it was followed writes nothing
                    # more: the page kept it live, its duration growing, for good.
                    unchecked = 0.0
                    if await _interrupted(run_id):
                        yield _sse("interrupted", json.dumps({"last_seq": last}))
                        return
            if await request.is_disconnected():
                return
            if more:
                continue
            if quiet >= heartbeat_s:
                quiet = 0.0
                yield ": keep-alive\n\n"
            await anyio.sleep(poll_interval_s)
            quiet += poll_interval_s
            unchecked += poll_interval_s

    async def _interrupted(run_id: str) -> bool:
        """Whether the run is stored as running and its writer process is gone."""
        try:
            info = await store.run_info(run_id)
            return info is not None and run_id in await writers.interrupted([info])
        except StoreError:  # said by the next poll, which reads the store again
            return False

    if token is not None:
        app.add_middleware(TokenGate, token=token)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(_RunIdPaths)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so 401 and 400 get it too
    return app


def _json(model: BaseModel, exclude: set[str] | None = None) -> str:
    """``model`` as JSON text, with pydantic's encoder; where a text of it holds a lone
    surrogate (a tool's or a model's output, as a memory store keeps it and a SQL store
    gives it back from its JSON escape), which UTF-8 cannot encode, with the surrogate
    escaped as JSON writes it (``\\udc80``): pydantic's encoder refused the whole model,
    and the API answered 500."""
    try:
        return model.model_dump_json(exclude=exclude)
    except PydanticSerializationError:
        return json.dumps(model.model_dump(mode="json", exclude=exclude), separators=(",", ":"))


def _detail_json(detail: RunDetail, graph: list[GraphNode]) -> str:
    """``detail`` as JSON with ``graph`` as its graph: the nodes encoded as the fold keeps
    them, plain dicts with :class:`GraphStep`'s fields in its order, the same text as
    the models would give, without making a model of each node of a large run."""
    try:
        nodes = pydantic_core.to_json(graph).decode()
    except PydanticSerializationError:  # a lone surrogate (see _json)
        nodes = json.dumps(graph, separators=(",", ":"))
    rest = _json(detail, exclude={"run", "graph"})
    return '{"run":' + _json(detail.run) + ',"graph":' + nodes + "," + rest[1:]


def _event_json(event: StoredEvent, preview: bool) -> str:
    """An event as JSON, its large texts cut with ``preview`` (see :mod:`._preview`)."""
    return preview_json(event, _json) if preview else _json(event)


def _events_response(
    run_id: str, events: list[StoredEvent], has_more: bool, finished: bool,
    *, preview: bool = False,
) -> Response:
    """The events page as JSON, each event encoded once, as the store gave it (through
    pydantic, a page of 5,000 events would be dumped, validated and dumped again)."""
    last_seq = events[-1].seq if events else None
    head = json.dumps({"run_id": run_id, "last_seq": last_seq, "has_more": has_more,
                       "finished": finished})
    body = (head[:-1] + ',"events":[' + ",".join(_event_json(e, preview) for e in events)
            + "]}")
    return Response(body, media_type="application/json", headers=_NO_STORE)
