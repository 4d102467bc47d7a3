"""Commands over the trace store: runs, show, resume, replay, export, import, gc, db upgrade."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestrator.cli._console import err, out, stdout_to_stderr, write_json
from orchestrator.cli._failure import workflow_failure
from orchestrator.cli._signals import StopSignals, run_stopping
from orchestrator.cli._trace_file import (
    NotAContinuation,
    NotText,
    decode_text,
    json_documents,
    rest_of,
)
from orchestrator.cli.commands import (
    _DEEP,
    FLAG,
    Db,
    Debug,
    _argv_text,
    _check_backend,
    _Exit,
    _exit_status,
    _fail,
    _input_failure,
    _parse_inputs,
    _report,
    _run_cli,
    _tool_executor,
    _workflow_problems,
    app,
)
from orchestrator.errors import (
    EventConflict,
    InvalidTrace,
    PonderError,
    SpecError,
    shown,
    without_step_id,
)
from orchestrator.runtime.events import RunStarted
from orchestrator.store import (
    TRACE_FORMAT,
    RunFilter,
    RunInfo,
    RunNotFound,
    RunRecord,
    StepRecord,
    StoredEvent,
    StoreOutdated,
    TraceStore,
    fold_events,
    interrupted_runs,
    is_interrupted,
    open_store,
    resolve_store_url,
    resume_target,
    upgrade,
)
from orchestrator.store._base import parse_trace_runs
from orchestrator.store._liveness import list_running
from orchestrator.store._open import MEMORY_URL, needs_read_only, require_schema, require_stored
from orchestrator.store._sql import SqlStore, normalize_url
from orchestrator.store._url import hide_password

# imported where used (and for type checking here): `ponder runs` and the other commands
# that only read the store need none of them, and importing them was half of their start
if TYPE_CHECKING:
    from orchestrator.runtime.engine import RunResult

T = TypeVar("T")
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.", metavar=FLAG)]


def with_store(db: str | None, fn: Callable[[TraceStore], Awaitable[T]], *,
               reads_only: str | None = None, stored: bool = False) -> T:
    """Open the store, run `fn` with it, close it.

    :param reads_only: the command (``"runs"``), when `fn` only reads: the store is
        never upgraded (an older schema is refused naming `ponder db upgrade`, as
        `ponder view` does), and a SQLite file this user may not write (a copied trace,
        another user's store, a read-only mount) is opened read-only, as it is, where
        opening it for writing is refused. Implies `stored`.
    :param stored: `fn` needs runs already stored: a SQLite file that was named and does
        not exist is refused (:func:`require_stored`), not created empty.
    """

    async def go() -> T:
        if reads_only or stored:
            require_stored(db)
            await require_schema(db)
        try:
            # a file this user may not write: read-only, and messages name it as given
            store = await (open_store(db, read_only=needs_read_only(db), auto_upgrade=False)
                           if reads_only else open_store(db))
        except StoreOutdated as exc:
            if reads_only is None:
                raise
            raise _reads_as_it_is(exc, reads_only) from None
        try:
            return await fn(store)
        except RunNotFound as exc:
            raise _searched(exc, db) from None
        finally:
            await store.close()

    return anyio.run(go)


def _reads_as_it_is(exc: StoreOutdated, command: str) -> StoreOutdated:
    """An older schema, found by a command that only reads: said as `ponder view` says
    it (the command leaves the store as it is; `ponder db upgrade` upgrades it)."""
    return StoreOutdated(f"{exc}; `ponder {command}` reads a store as it is, and never "
                         "upgrades it",
                         url=exc.url or "", current=exc.current, head=exc.head)


def _searched(exc: RunNotFound, db: str | None) -> RunNotFound:
    """A run asked for by the user and not found, said with the store searched: a run
    made with another ``--db`` (or ``PONDER_DB_URL``) is not in this one, and the bare
    "no run 'x' in the trace store" did not say which that was."""
    if type(exc) is not RunNotFound or str(exc) != str(RunNotFound(exc.run_id)):
        return exc  # an ambiguous id, or a message of its own
    where = hide_password(resolve_store_url(db))
    return RunNotFound(exc.run_id, f"{exc} {where} (`ponder runs` lists its runs; another "
                       "store: --db URL or PONDER_DB_URL)")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.2f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    except (OverflowError, OSError, ValueError):  # an imported trace's odd clock
        return repr(ts)


@app.command()
def runs(
    db: Db = None,
    status: Annotated[str | None, typer.Option(
        help="running|interrupted|succeeded|failed|cancelled")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow.")] = None,
    top_level: Annotated[bool, typer.Option(
        "--top-level", metavar=FLAG, help="Only runs no step of another run started: not the runs of "
        "sub-workflows (replays and forks are listed).")] = False,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 50,
    offset: Annotated[int, typer.Option(help="Rows to skip.")] = 0,
    as_json: AsJson = False,
    debug: Debug = False,
) -> None:
    """List runs, newest first: a run's sub-workflows' runs too (`--top-level` leaves
    them out)."""

    async def read(store: TraceStore) -> tuple[list[RunInfo], set[str], dict[str, str]]:
        if status in ("running", "interrupted"):  # the store keeps no "interrupted"
            rows, interrupted = await list_running(
                store, RunFilter(workflow=workflow, top_level=top_level),
                interrupted=status == "interrupted", limit=limit, offset=offset)
        else:
            rows = await store.list_runs(RunFilter(status=status, workflow=workflow,
                                                   top_level=top_level),
                                         limit=limit, offset=offset)
            interrupted = await interrupted_runs(store, rows)
        # an interrupted sub-workflow's run is continued by resuming the run above it
        above = {r.id: await resume_target(store, r.id) for r in rows
                 if r.id in interrupted and r.parent_run_id is not None}
        return rows, interrupted, {k: v for k, v in above.items() if k != v}

    def go() -> None:
        if status is not None and status not in _STATUSES:
            raise _fail(f"--status {shown(status)}: use one of {', '.join(_STATUSES)}")
        _check_count("--limit", limit)
        _check_count("--offset", offset)
        rows, interrupted, resumed_with = with_store(db, read, reads_only="runs")
        if as_json:
            docs = [{**r.model_dump(mode="json"), "interrupted": r.id in interrupted,
                     **_resume_field(r.id, interrupted, resumed_with)} for r in rows]
            write_json(docs)
            return
        # where a run came from, a column only where some run has a parent
        origins = [_origin(r) for r in rows]
        table = Table("run", "workflow", "status", "started", "duration", "tokens", "steps",
                      *(["from"] if any(origins) else []), box=None)
        # a narrow terminal wraps the other columns: an id is what the user copies
        table.columns[0].no_wrap = True
        table.columns[0].min_width = max((len(r.id) for r in rows), default=3)
        for r, origin in zip(rows, origins, strict=True):
            tokens = (r.prompt_tokens or 0) + (r.completion_tokens or 0)
            state = "interrupted" if r.id in interrupted else r.status
            table.add_row(Text(r.id), Text(r.workflow or ""), Text(state),
                          _when(r.started_at), _age(r.duration_s), str(tokens or ""),
                          str(r.n_steps or ""), *([Text(origin)] if any(origins) else []))
        out.print_table(table)
        if not rows and limit:  # say so, and where it looked: a header alone read as broken
            which = " ".join(filter(None, ["top-level" if top_level else None, status, "runs",
                                           workflow and f"of workflow {shown(workflow)}"]))
            err.print(f"no {which}{f' past the first {offset}' if offset else ''} in the "
                      f"trace store {hide_password(resolve_store_url(db))}", markup=False,
                      highlight=False, soft_wrap=True)
        if interrupted:
            err.print("interrupted: the process running it is gone; continue with "
                      "`ponder resume RUN_ID`", markup=False, highlight=False, soft_wrap=True)
        for r in rows:  # abandoned by the resume of the run above it (its reason says)
            if r.status == "cancelled" and (r.error or "").startswith("superseded: "):
                err.print(f"{r.id}: {r.error}; it will not go on", markup=False,
                          highlight=False, soft_wrap=True)
        for top in sorted(set(resumed_with.values())):
            subs = sorted(k for k, v in resumed_with.items() if v == top)
            err.print(f"{', '.join(subs)}: sub-workflow run{'s' if len(subs) > 1 else ''} "
                      f"of run {top}: `ponder resume {top}` continues "
                      f"{'them' if len(subs) > 1 else 'it'}", markup=False, highlight=False,
                      soft_wrap=True)

    _run_cli(go, debug, as_json)


def _origin(run: RunInfo | RunRecord) -> str:
    """Where a run came from: the step of another run that started it (a sub-workflow's
    run, a spawn's child), or the run it forks or replays; empty for a run of its own."""
    if run.parent_run_id is None:
        return ""
    if run.parent_attempt is not None:
        return f"step {run.parent_step_id} of {run.parent_run_id}"
    if run.parent_step_id is not None:
        return f"fork of {run.parent_run_id} from {run.parent_step_id}"
    return f"replay of {run.parent_run_id}"


def _resume_field(run_id: str, interrupted: set[str], resumed_with: dict[str, str]
                  ) -> dict[str, str]:
    """``--json``'s ``resume``: the run to resume to continue an interrupted one (itself,
    or the run above a sub-workflow's run); absent for a run that is not interrupted."""
    if run_id not in interrupted:
        return {}
    return {"resume": resumed_with.get(run_id, run_id)}


_STATUSES = ("running", "interrupted", "succeeded", "failed", "cancelled")
#: the largest row count a store takes (a 64-bit SQL integer)
_MAX_COUNT = 2**63 - 1


def _check_count(option: str, value: int) -> None:
    if not 0 <= value <= _MAX_COUNT:
        raise _fail(f"{option} {value}: use a whole number from 0 to {_MAX_COUNT}")


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="Run id, or its start.")],
    db: Db = None,
    as_json: AsJson = False,
    debug: Debug = False,
) -> None:
    """Show a run's steps with status, timing, tokens and errors (and the runs of its
    sub-workflow steps)."""

    async def read(store: TraceStore) -> tuple[RunRecord, bool, str]:
        events = await store.events(await store.resolve_run_id(run_id))
        if not events:
            raise RunNotFound(run_id)
        rec, interrupted = fold_events(events), is_interrupted(events)
        return rec, interrupted, await resume_target(store, rec.id) if interrupted else rec.id

    def go() -> None:
        rec, interrupted, top = with_store(db, read, reads_only="show")
        resumed_with = {rec.id: top} if top != rec.id else {}
        if as_json:
            doc = {**rec.model_dump(mode="json"), "interrupted": interrupted,
                   **_resume_field(rec.id, {rec.id} if interrupted else set(), resumed_with)}
            write_json(doc)
            return
        # ids, names and errors are the user's: shown as text, never read as rich markup
        head = Text(rec.workflow or "", style="bold")
        state = "interrupted" if interrupted else rec.status
        head.append(f" run {rec.id}: {state}  started {_when(rec.started_at)}  "
                    f"{_age(rec.duration_s)}  tokens {rec.prompt_tokens}+{rec.completion_tokens}")
        out.print(head, highlight=False)
        if origin := _origin(rec):
            out.print(origin, markup=False, highlight=False)
        if rec.error:
            out.print(f"error: {rec.error}", markup=False, highlight=False)
        # the run of each sub-workflow step that succeeded (a failed one's error names it),
        # for `ponder show RUN` of it: a column only where there are some
        children = {st.id: child for st in rec.steps if isinstance(st.meta, dict)
                    and isinstance(child := st.meta.get("child_run_id"), str)}
        table = Table("step", "kind", "status", "attempts", "time", "tokens",
                      *(["run"] if children else []), "error", box=None)
        # as `ponder runs` does its ids: a narrow terminal wraps the errors, not the ids
        table.columns[0].no_wrap = True
        table.columns[0].min_width = max((len(st.id) for st in rec.steps), default=4)
        if children:  # the column before the errors'
            table.columns[-2].no_wrap = True
            table.columns[-2].min_width = max(len(c) for c in children.values())
        for st in rec.steps:
            tokens = (st.prompt_tokens or 0) + (st.completion_tokens or 0)
            table.add_row(Text(st.id), Text(st.kind or ""), Text(st.status), str(st.attempts),
                          _age(st.duration_s), str(tokens or ""),
                          *([Text(children.get(st.id, ""))] if children else []),
                          Text(_cell(without_step_id(st.id, st.error))))
        out.print_table(table)
        for line in _planning(rec):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
        if interrupted and top != rec.id:
            err.print(f"interrupted: the process running it is gone; it is a sub-workflow's "
                      f"run of run {top}: `ponder resume {top}` continues both", markup=False,
                      highlight=False, soft_wrap=True)
        elif interrupted:
            err.print(f"interrupted: the process running it is gone; continue it with "
                      f"`ponder resume {rec.id}`", markup=False, highlight=False, soft_wrap=True)

    _run_cli(go, debug, as_json)


def _planning(rec: RunRecord) -> list[str]:
    """What each plan step's planner did, round by round: the plans it rejected (and
    whether it asked again) and the joiner's decisions (``meta``'s ``plan_errors`` and
    ``decisions``, folded from the events for a plan step that failed); an AGoT step's
    layer by layer (:func:`_layers`)."""
    lines: list[str] = []
    for st in rec.steps:
        meta = st.meta if isinstance(st.meta, dict) else {}
        if _planner(rec, st) == "agot":
            lines += [f"{st.id}: {text}" for text in _layers(meta)]
            continue
        story: list[tuple[tuple[int, int, int], str]] = []
        joining: set[Any] = set()  # the rounds whose joiner answered badly (so far)
        for e in meta.get("plan_errors") or ():
            if isinstance(e, dict):
                again = "asked again" if e.get("will_retry") else "given up"
                by = e.get("by")
                if by == "joiner" or (by is None and (e.get("round") in joining
                                                      or _joiner_error(e))):
                    joining.add(e.get("round"))
                    story.append(((e.get("round") or 0, 1, e.get("attempt") or 0),
                                  f"round {e.get('round')}, joiner try {e.get('attempt')}: "
                                  f"error [{e.get('code')}] {e.get('error')} ({again})"))
                    continue
                story.append(((e.get("round") or 0, 0, e.get("attempt") or 0),
                              f"round {e.get('round')}, try {e.get('attempt')}: plan error "
                              f"[{e.get('code')}] {e.get('error')} ({again})"))
        for d in meta.get("decisions") or ():
            if isinstance(d, dict):
                why = d.get("reason") if d.get("action") == "replan" else shown(d.get("answer"))
                # (a direct answer is the plan's, no joiner call; older runs record no `by`)
                by = "plan's answer" if d.get("by") == "plan" else "joiner"
                story.append(((d.get("round") or 0, 2, 0),
                              f"round {d.get('round')}: {by}: {d.get('action')}"
                              + (f": {why}" if why else "")))
        lines += [f"{st.id}: {text}" for _, text in sorted(story, key=lambda x: x[0])]
    return lines


def _planner(rec: RunRecord, st: StepRecord) -> str | None:
    """The planner of a plan step, as its definition names it: a step a plan added has
    its own (``spec``), a step of the workflow the run's; None for any other step."""
    if st.kind != "plan":
        return None
    spec = st.spec
    if spec is None:
        declared = rec.spec.get("steps") if isinstance(rec.spec, dict) else None
        spec = next((s for s in declared if isinstance(s, dict) and s.get("id") == st.id),
                    None) if isinstance(declared, list) else None
    planner = spec.get("planner", "llmcompiler") if isinstance(spec, dict) else None
    return planner if isinstance(planner, str) else None


#: the layer an AGoT plan error is about, as its message names it: "layer 2: thought T4
#: builds on 99..." (a layer's answer), "the proposal of layer 2 did not finish..."; read
#: for a trace written before plan_error recorded its ``layer``
_LAYER_ERROR = re.compile(r"(?:layer (\d+): |the proposal of layer (\d+) )")


def _layers(meta: dict[str, Any]) -> list[str]:
    """An AGoT graph's plan errors, in the order they came (layer after layer: AGoT has
    no rounds, each layer is asked again on its own), each labelled by its layer."""
    lines: list[str] = []
    for e in meta.get("plan_errors") or ():
        if not isinstance(e, dict):
            continue
        text = str(e.get("error"))
        again = "asked again" if e.get("will_retry") else "given up"
        m = _LAYER_ERROR.match(text)
        layer = e.get("layer")  # (recorded since it was; before, read from the text)
        if not isinstance(layer, int) and m is not None:
            layer = int(m.group(1) or m.group(2))
        if not isinstance(layer, int):  # a thought's own (its complexity check, its answer)
            where = f"round {e.get('round')}, try {e.get('attempt')}"
        else:
            where = f"layer {layer}, try {e.get('attempt')}"
            if m is not None and m.group(1):
                text = text[m.end():]  # (said in the label)
        lines.append(f"{where}: plan error [{e.get('code')}] {text} ({again})")
    return lines


def _joiner_error(error: dict[str, Any]) -> bool:
    """Whether a plan error of a trace written before ``plan_error`` said whose answer it
    was (``by``) is the joiner's (its tries are counted from 1 again, after the planner's
    of the round): a ``bad_joiner`` one, or one whose message names the joiner's call
    (``timeout``) or answer (``truncated``); a round's errors after the joiner's are the
    joiner's too."""
    text = str(error.get("error") or "")
    return (error.get("code") == "bad_joiner" or text.startswith("the joiner ")
            or (error.get("code") == "truncated" and "before its answer was complete" in text))


#: the characters of an error a table shows on a terminal (off one, all of it)
_CELL_CHARS = 80


def _cell(error: str) -> str:
    """An error as ``ponder show``'s table shows it: cut after :data:`_CELL_CHARS` on a
    terminal (``--json`` gives all of it), whole off a terminal."""
    if out.wraps and len(error) > _CELL_CHARS:
        return error[:_CELL_CHARS - 1] + "…"
    return error


@app.command(name="resume")
def resume_cmd(
    run_id: Annotated[str, typer.Argument(
        metavar="RUN_ID", help="Run id of an interrupted run, or its start.")],
    db: Db = None,
    backend: Annotated[str | None, typer.Option(
        help="Override every model's backend (default: the run's own --backend, if it "
        "had one).")] = None,
    tool_executor: Annotated[str | None, typer.Option(
        "--tool-executor", help="Run tool steps with this executor, e.g. ray-tool "
        "(default: the run's own --tool-executor, if it had one).")] = None,
    as_json: AsJson = False,
    debug: Debug = False,
) -> None:
    """Continue an interrupted or cancelled run where it stopped.

    Completed steps are not executed again (a failed one stays failed, and what needs it
    skipped: fork from it with `ponder replay RUN --from STEP` to run it again), and the
    sub-workflow runs it had in flight
    continue under their own ids. Exit 0 only when the run succeeded (a run that had
    finished already: exit 1 when it failed)."""

    from orchestrator.runtime.durable import RunAlreadyFinished, recorded_children, resume
    from orchestrator.runtime.registry import Registry

    async def run(store: TraceStore, hooks: list[Any],
                  on_scheduler: Callable[[Any], None]) -> RunResult | RunRecord:
        from orchestrator.store import StoreHook

        events = await store.events(await store.resolve_run_id(run_id))
        if not events:
            raise RunNotFound(run_id)
        for hook in hooks:  # its first write finds the run still there (`ponder gc`)
            if isinstance(hook, StoreHook):
                hook.continues(events[0].run_id)
        declared.append(_declares_outputs(events))
        try:
            return await resume(events, registry=registry, hooks=hooks, backend=backend,
                                children=recorded_children(store), on_scheduler=on_scheduler,
                                tool_executor=tool_executor or None)
        except RunAlreadyFinished as exc:
            rec = fold_events(events)
            err.print(str(exc) + _fork_hint(rec), markup=False, highlight=False,
                      soft_wrap=True)
            return rec

    declared: list[bool] = []  # whether the run's workflow declares outputs
    # the run's: the executor --tool-executor names is loaded onto it once, by the check
    registry = Registry.default()

    def go() -> None:
        _check_backend(backend, registry)
        if tool_executor:  # in the words of `ponder run --tool-executor`
            _tool_executor(tool_executor, registry)
        # as for `ponder run`: until the result is printed, a signal cancels the run
        # (until it has finished) and never ends the command
        with StopSignals() as stops:
            with stdout_to_stderr():  # a tool's prints: stdout holds the result alone
                result = _run_stopping(db, run, stops, "the resumed run")
            if isinstance(result, RunRecord):  # finished already: nothing was run
                finished = _as_result(result)
                if as_json:
                    _report(finished, as_json, declared[0])
                # exits as `ponder run` of it did: a script sees a failed run fail
                if not finished.ok:
                    raise _Exit(_exit_status(finished, None))
                return
            _report(result, as_json, declared[0])
        if not result.ok:
            raise _Exit(_exit_status(result, stops.signal if result.status == "cancelled"
                                     else None))

    _run_cli(go, debug, as_json)


def _fork_hint(rec: RunRecord) -> str:
    """For a run that failed, how to run it again from its (first) failed step, which
    resume cannot: a fork (``ponder replay --from``)."""
    if rec.status != "failed":
        return ""
    step = next((st.id for st in rec.steps if st.status == "failed"), "STEP")
    return f"; to run it again from a step: ponder replay {rec.id} --from {step}"


class _Folded:
    """A run folded already, as a :class:`RunResult` reads its steps."""

    def __init__(self, rec: RunRecord) -> None:
        self._rec = rec

    def record(self) -> RunRecord:
        return self._rec


def _run_stopping(db: str | None,
                   start: Callable[[TraceStore, list[Any], Callable[[Any], None]], Awaitable[T]],
                   stops: StopSignals, what: str) -> T:
    """Open the stored trace store ``db``, run ``start(store, hooks, on_scheduler)`` in
    it (``resume`` or ``replay`` with those), close the store: a stop signal cancels the
    run through its scheduler, as it does ``ponder run``'s (see
    :func:`~orchestrator.cli._signals.run_stopping`)."""

    async def opened() -> TraceStore:
        require_stored(db)
        await require_schema(db)
        return await open_store(db)

    async def started(store: TraceStore, hooks: list[Any],
                      on_scheduler: Callable[[Any], None]) -> T:
        try:
            return await start(store, hooks, on_scheduler)
        except RunNotFound as exc:
            raise _searched(exc, db) from None

    async def go() -> T:
        return await run_stopping(stops, opened, started, what=what)

    return anyio.run(go)


def _declares_outputs(events: list[StoredEvent]) -> bool:
    """Whether the workflow of a recorded run declares ``outputs:``."""
    first = events[0]
    return isinstance(first, RunStarted) and bool(first.spec.get("outputs"))


def _as_result(rec: RunRecord) -> RunResult:
    """A stored run as the result ``ponder run`` reports."""
    from orchestrator.runtime.contracts import Usage
    from orchestrator.runtime.engine import RunResult

    return RunResult(rec.id, rec.workflow or "", rec.status, rec.output, _Folded(rec),
                     Usage(rec.prompt_tokens, rec.completion_tokens), rec.duration_s or 0.0,
                     rec.error)


_SET_RE = re.compile(r"^([A-Za-z_][\w\-\[\]]*)\.output=(.*)$", re.S)


@app.command(name="replay")
def replay_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="Run id to replay, or its start.")],
    db: Db = None,
    from_step: Annotated[str | None, typer.Option("--from", help="Re-execute this step and "
                                                  "everything after it.")] = None,
    set_: Annotated[list[str], typer.Option(
        "--set", metavar="STEP.output=JSON", help="Give a step this output instead of the "
        "recorded one (repeatable).")] = [],  # noqa: B006
    input: Annotated[list[str], typer.Option(
        "--input", "-i", metavar="KEY=VALUE",
        help="Replaces a recorded input (repeatable).")] = [],  # noqa: B006
    workflow: Annotated[Path | None, typer.Option(help="Workflow file (default: the recorded "
                                                  "source).")] = None,
    backend: Annotated[str | None, typer.Option(
        help="Override every model's backend (default: the run's own --backend, if it "
        "had one).")] = None,
    tool_executor: Annotated[str | None, typer.Option(
        "--tool-executor", help="Run the fork's tool steps with this executor, e.g. "
        "ray-tool (default: the run's own --tool-executor, if it had one).")] = None,
    as_json: AsJson = False,
    debug: Debug = False,
) -> None:
    """Replay a run from its trace (no model is called), or fork it from a step."""

    from orchestrator.runtime.durable import replay
    from orchestrator.runtime.registry import Registry
    from orchestrator.spec.loader import load_yaml
    from orchestrator.spec.models import non_finite

    def parse_sets() -> dict[str, Any]:
        values: dict[str, Any] = {}
        for item in set_:
            m = _SET_RE.match(_argv_text("--set", item))
            if not m:
                raise _fail(f"--set {shown(item)} must look like STEP.output=JSON")
            try:
                values[m.group(1)] = json.loads(m.group(2))
            except json.JSONDecodeError as exc:
                raise _fail(f"--set {shown(item)}: the value is not JSON ({exc.msg})") from None
            except RecursionError:
                raise _fail(f"--set {m.group(1)}.output: the value nests too deeply "
                            f"({_DEEP})") from None
            where = non_finite(values[m.group(1)], f"{m.group(1)}.output")
            if where is not None:  # (Python's JSON parser reads NaN and Infinity)
                raise _fail(f"--set {m.group(1)}.output: {where}, which JSON has no number "
                            "for")
        return values

    def go() -> None:
        sets = parse_sets()
        if sets and from_step is None:
            raise _fail("--set needs --from STEP (the step to re-execute from)")
        if input and from_step is None:
            # a replay repeats the recording: a changed input only fails the first step
            # that reads it ("the rendered input differs"), after the run has started
            raise _fail("--input needs --from STEP (the step to re-execute from; a replay "
                        "without it repeats the recorded inputs)")
        overrides = _parse_inputs(input, None)
        # the fork's: the executor --tool-executor names is loaded onto it once, by the check
        registry = Registry.default()
        _check_backend(backend, registry)
        if tool_executor:  # in the words of `ponder run --tool-executor`
            _tool_executor(tool_executor, registry)
        if workflow is not None:
            problems = _workflow_problems(workflow)
            if problems:
                raise workflow_failure(problems, workflow)
        replayed: list[str] = []
        declared: list[bool] = []  # whether the replayed workflow declares outputs

        async def run(store: TraceStore, hooks: list[Any],
                      on_scheduler: Callable[[Any], None]) -> RunResult:
            events = await store.events(await store.resolve_run_id(run_id))
            if not events:
                raise RunNotFound(run_id)
            replayed.append(events[0].run_id)  # the whole id, when given its start
            declared.append(bool(load_yaml(workflow)[0].outputs) if workflow is not None
                            else _declares_outputs(events))
            # (inputs it does not take are refused before anything is recorded)
            return await replay(events, registry=registry, hooks=hooks, workflow_file=workflow,
                                from_step=from_step, set_outputs=sets, inputs=overrides,
                                backend=backend, on_scheduler=on_scheduler,
                                tool_executor=tool_executor or None)

        # as for `ponder run`: until the result is printed, a signal cancels the run
        # (until it has finished) and never ends the command
        with StopSignals() as stops:
            try:
                with stdout_to_stderr():  # a tool's prints: stdout holds the result alone
                    result = _run_stopping(db, run, stops, "the replay")
            except (SpecError, RecursionError) as exc:  # the inputs, checked as it starts
                raise _input_failure(exc, overrides) from None
            _report(result, as_json, declared[0])
            if not as_json:
                what = "replay" if from_step is None else "fork"
                err.print(f"{what} of {replayed[0]} recorded as run {result.run_id}",
                          markup=False, highlight=False)
        if not result.ok:
            raise _Exit(_exit_status(result, stops.signal if result.status == "cancelled"
                                     else None))

    _run_cli(go, debug, as_json)


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="Run id, or its start.")],
    db: Db = None,
    output: Annotated[Path | None, typer.Option("-o", help="Write to this file.")] = None,
    debug: Debug = False,
) -> None:
    """Write a run and all its events as one JSON document, with its child runs (its
    sub-workflows', fan-outs' and plans' runs), which resuming it needs."""

    def go() -> None:
        async def read(store: TraceStore) -> dict[str, Any]:
            return await store.export_run(await store.resolve_run_id(run_id))

        doc = with_store(db, read, reads_only="export")
        if output is None:
            write_json(doc)
            return
        if _is_store_file(output, db):
            raise _fail(f"-o {output}: that is a file of the trace store "
                        f"{hide_password(resolve_store_url(db))}, which writing the export "
                        "there would destroy; write it to another file", kind="file",
                        location=str(output))
        text = json.dumps(doc, ensure_ascii=False) + "\n"
        try:
            # a lone surrogate (a tool's output) as its JSON escape: no UTF-8 holds it
            output.write_text(text, encoding="utf-8", errors="backslashreplace")
        except OSError as exc:
            raise _fail(f"-o {output}: cannot write it: {exc.strerror or exc}", kind="file",
                        location=str(output)) from None

    _run_cli(go, debug)


def _is_store_file(path: Path, db: str | None) -> bool:
    """Whether ``path`` is the SQLite file of the store ``db`` names (or its journal,
    its write-ahead log or that log's index), by any name (a link, ``./``, ``..``)."""
    url = resolve_store_url(db)
    if url == MEMORY_URL:
        return False
    store = SqlStore(url).path
    if store is None:
        return False
    try:
        if path.exists() and store.exists() and path.samefile(store):
            return True
        files = [store, *(store.with_name(store.name + end)
                          for end in ("-journal", "-wal", "-shm"))]
        return path.resolve() in {file.resolve() for file in files}
    except (OSError, RuntimeError):  # (a loop of links) writing it says what is wrong
        return False


class _NotJSONNumber(Exception):
    """NaN, Infinity or -Infinity in a JSON document (Python's parser reads them)."""


def _no_constant(name: str) -> Any:
    raise _NotJSONNumber(name)


@app.command(name="import")
def import_cmd(
    file: Annotated[Path, typer.Argument(
        metavar="FILE", help="A document written by `ponder export`; - reads it from "
        "standard input (ponder export RUN | ponder import - --db OTHER).")],
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Store a run exported by `ponder export` (with its child runs), or several: their
    documents one after another in FILE. All are stored, or none."""

    def go() -> None:
        url = resolve_store_url(db)
        if not _persists(url):
            raise _fail(f"--db {hide_password(url)}: that store keeps nothing once this command ends, so "
                        "the import would be lost; import into a SQLite file or PostgreSQL")
        stdin = str(file) == "-"  # (a file named - is ./-)
        name = "standard input" if stdin else str(file)
        try:
            data = sys.stdin.buffer.read() if stdin else file.read_bytes()
            docs = json_documents(decode_text(data), _no_constant)
        except _NotJSONNumber as exc:
            raise _fail(f"{name}: not JSON: {exc} is not a JSON number (a document written "
                        "by `ponder export` has none)", kind="file",
                        location=name) from None
        except OSError as exc:
            raise _fail(f"cannot read {name}: {exc.strerror}", kind="file",
                        location=name) from None
        except NotText as exc:
            raise _fail(f"{name}: {exc}; a document written by `ponder export` is UTF-8 "
                        "JSON", kind="file", location=name) from None
        except json.JSONDecodeError as exc:
            where = f"{name}:{exc.lineno}:{exc.colno}"
            raise _fail(f"{where}: not JSON: {exc.msg}", kind="file", location=where) from None
        except RecursionError:
            raise _fail(f"{name}: nests too deeply ({_DEEP})", kind="file",
                        location=name) from None

        # every document is checked before any is stored, and all are stored at once
        runs = [_trace_runs(doc, name if len(docs) == 1 else f"{name}:{line}")
                for line, doc in docs]
        _check_each_run_once(runs, [line for line, _ in docs], name)

        async def store_it(store: TraceStore) -> list[int]:
            """Store what the documents add; for each, the events it adds to runs the
            store held in part."""
            grown: list[int] = []
            new: list[StoredEvent] = []
            for doc_runs in runs:
                count = to_stored = 0
                for run in doc_runs:
                    stored = await store.events(run[0].run_id)
                    rest = rest_of(run, stored)
                    count, to_stored = count + len(rest), to_stored + len(rest) * bool(stored)
                    new += rest
                if not count:  # each of its runs is stored as it has it
                    raise _already_stored(name, doc_runs[0][0].run_id)
                grown.append(to_stored)
            # (what TraceStore.import_run does with one document, for all of them; a
            # write of the same runs meanwhile is an EventConflict, and writes nothing)
            await store.append(new)
            return grown

        try:
            added = with_store(db, store_it)
        except EventConflict as exc:
            raise _already_stored(name, exc.run_id) from None
        except NotAContinuation as exc:
            raise _fail(f"{name}: {exc}; nothing was imported. Import it into another store "
                        "(--db)", kind="store", location=name) from None
        for doc_runs, grown in zip(runs, added, strict=True):
            rid, n = doc_runs[0][0].run_id, len(doc_runs) - 1
            # (a document of a run with child runs holds them: they were imported with it)
            more = f" and its {n} child run{'s' if n != 1 else ''}" if n else ""
            went_on = (f": the trace store held part of it, the {grown} event"
                       f"{'s' if grown != 1 else ''} that followed are added") if grown else ""
            out.print(f"imported run {rid}{more}{went_on}", markup=False, highlight=False)
            problem = _recorded_workflow_problem(doc_runs[0])
            if problem is not None:
                err.print(f"[yellow]warning:[/yellow] run {escape(rid)}: {escape(problem)}: "
                          "it can be shown and viewed, not resumed; replay it with its "
                          "workflow file (ponder replay --workflow FILE; without it, replay "
                          "reads the file the run was started from, where that still exists)",
                          highlight=False, soft_wrap=True)

    _run_cli(go, debug)


def _already_stored(name: str, run_id: str) -> Exception:
    """The failure of an import that would add nothing to a run the store holds."""
    return _fail(f"{name}: run {run_id} is in the trace store already (imported or run "
                 "there before); nothing was imported. Import it into another store (--db)",
                 kind="store", location=name)


def _trace_runs(doc: Any, where: str) -> list[list[StoredEvent]]:
    """The runs of one document of ``ponder import``'s file (see
    :func:`~orchestrator.store._base.parse_trace_runs`): its run's events, then each
    child run's.

    :param where: the document, as messages name it (``FILE``, ``FILE:LINE``).
    :raises Failure: (``invalid_trace``) for JSON that is no trace, in one line, and for
        a trace with problems, naming each.
    """
    if not isinstance(doc, dict) or doc.get("format") != TRACE_FORMAT:
        what = (f'its "format" is {shown(doc.get("format"))}; an export\'s is '
                f'"{TRACE_FORMAT}"' if isinstance(doc, dict) and "format" in doc
                else f'it has no "format"; an export\'s is "{TRACE_FORMAT}"'
                if isinstance(doc, dict)
                else f"it is a JSON {_JSON_TYPES.get(type(doc), 'value')}; an export is an "
                "object, one per run")
        raise _fail(f"{where}: not a trace written by `ponder export` ({what})",
                    kind="invalid_trace", location=where)
    try:
        return parse_trace_runs(doc)
    except InvalidTrace as exc:
        raise _fail(f"{where}: {exc}", kind="invalid_trace", location=where) from None


_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def _check_each_run_once(runs: list[list[list[StoredEvent]]], lines: list[int],
                         name: str) -> None:
    """:raises Failure: when two documents of the file hold the same run (the same
    export twice; a sub-workflow's run exported alone and with the run above it)."""
    first: dict[str, int] = {}
    for doc_runs, line in zip(runs, lines, strict=True):
        for run in doc_runs:
            rid = run[0].run_id
            if rid in first:
                raise _fail(f"{name}: run {rid} is in the documents of lines {first[rid]} and "
                            f"{line}; nothing was imported. Import each run once",
                            kind="invalid_trace", location=f"{name}:{line}")
            first[rid] = line


def _recorded_workflow_problem(started: list[StoredEvent]) -> str | None:
    """What keeps the workflow an imported run's trace records (its first ``run_started``)
    from reading as a workflow of this version of Ponder, which ``ponder resume`` and
    ``ponder replay`` (without ``--workflow``) need: the first problem, in the words they
    use; None when it reads (or no ``run_started`` is a known event)."""
    from orchestrator.spec.models import WorkflowSpec

    first = next((e for e in started if isinstance(e, RunStarted)), None)
    if first is None:
        return None
    if not first.spec:
        return f"its trace records no workflow ({shown(first.workflow)})"
    try:
        WorkflowSpec.model_validate(first.spec)
    except ValidationError as exc:
        problem, more = exc.errors()[0], exc.error_count() - 1
        where = ".".join(str(part) for part in problem["loc"]) or "spec"
        return (f"the workflow {shown(first.workflow)} its trace records does not read as a "
                f"workflow of this version of Ponder ({where}: {problem['msg']}"
                f"{f'; and {more} more' if more else ''})")
    return None


def _persists(url: str) -> bool:
    """Whether a store URL keeps what is written after the process ends (``memory://``
    and an in-memory SQLite database do not)."""
    if url == MEMORY_URL:
        return False
    try:
        parsed = normalize_url(url)
    except PonderError:
        return True  # opening it reports the problem
    database = parsed.database or ""
    return parsed.get_backend_name() != "sqlite" or (
        database not in ("", ":memory:") and "mode=memory" not in database
        and "memory" not in str(parsed.query.get("mode", "")))


_AGE_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@app.command()
def gc(
    older_than: Annotated[str, typer.Option("--older-than", help="Age such as 30d, 12h.")],
    db: Db = None,
    debug: Debug = False,
) -> None:
    """Delete finished runs older than an age, with their sub-workflows' runs.

    Each run goes with all its events and the runs of its sub-workflows (whatever their
    status); a sub-workflow's run left behind by a deleted run goes too once it is that
    old."""

    def go() -> None:
        m = _AGE_RE.match(older_than.strip())
        if not m:
            raise _fail(f"--older-than {shown(older_than)}: use a number and s, m, h, d or w (30d)")
        try:
            age = timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
        except OverflowError:
            raise _fail(f"--older-than {shown(older_than)}: too large (at most "
                        f"{timedelta.max.days}d)") from None
        n = with_store(db, lambda s: s.delete_runs_older_than(age), stored=True)
        out.print(f"deleted {n} run{'s' if n != 1 else ''}", highlight=False)

    _run_cli(go, debug)


db_app = typer.Typer(help="Trace store maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command(name="upgrade")
def db_upgrade(db: Db = None, debug: Debug = False) -> None:
    """Upgrade the store's schema to this version of Ponder (creating the store where
    there is none)."""

    def go() -> None:
        before, after = anyio.run(lambda: upgrade(db))
        where = hide_password(resolve_store_url(db))
        # a mistyped SQLite path is a new, empty store: say it was made, not that it is
        # up to date
        said = (f"created the trace store at {where} (schema {after})" if before is None
                else f"upgraded {where} from schema {before} to {after}" if before != after
                else f"{where} is up to date (schema {after})")
        out.print(said, markup=False, highlight=False)

    _run_cli(go, debug)
