"""How a command reports a failure: the same for every command.

A failure is one line on stderr (``error: ...``, naming the offending value or
``file:line``), after each problem of a workflow that has some. With ``--json`` it is
also the one document on stdout::

    {"status": "error",
     "error": {"kind": "...", "message": "...", "location": "file:line:column" | null,
               "problems": [...],   # kind "workflow": each {message, hint, location}
               "files": [...],      # ponder validate: each {file, ok, problems}
               "matches": [...]}}   # kind "ambiguous_run_id": runs the prefix starts

``kind`` is one of :data:`KINDS`; ``message`` is the line printed on stderr.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from orchestrator.cli._console import err as _err
from orchestrator.cli._console import write_json
from orchestrator.errors import (
    AmbiguousRunId,
    ConfigError,
    InvalidTrace,
    PonderError,
    Problem,
    RunNotFound,
    StoreError,
    ValidationFailed,
)

#: every ``error.kind``, and when it is given
KINDS = {
    "usage": "a malformed option or argument",
    "input": "a workflow input that is malformed, unknown, missing or of the wrong type",
    "workflow": "a workflow file that cannot be read or has problems (each in `problems`)",
    "file": "another file named on the command line cannot be read or written",
    "config": "an unknown backend, executor, planner or tool; a bad trace store URL",
    "run_not_found": "no run has that id (or an id starting so)",
    "ambiguous_run_id": "several runs' ids start so (some in `matches`)",
    "run_still_running": "the run's process is alive: it cannot be resumed",
    "store": "the trace store cannot be opened, read or written",
    "invalid_trace": "an imported document is not a valid trace",
    "error": "any other error Ponder reports on purpose",
    "interrupted": "Ctrl-C (exit status 130)",
    "internal": "a bug in Ponder (exit status 2; --debug shows the traceback)",
}

class Failure(Exception):
    """A failure a command reports once, on stderr and (with ``--json``) on stdout.

    :param message: one line naming the offending value or ``file:line``.
    :param kind: one of :data:`KINDS`.
    :param code: the exit status.
    :param location: ``file``, ``file:line`` or ``file:line:column``, when known.
    :param problems: each problem of a workflow (printed before the message).
    :param matches: for an ambiguous run id, some of the runs it starts.
    :param files: for ``ponder validate --json``, each file checked with its problems.
    """

    def __init__(self, message: str, *, kind: str = "usage", code: int = 1,
                 location: str | None = None, problems: list[Problem] | None = None,
                 matches: list[str] | None = None,
                 files: list[dict[str, Any]] | None = None) -> None:
        assert kind in KINDS, kind
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code
        self.location = location
        self.problems = problems or []
        self.matches = matches
        self.files = files


def where(problem: Problem) -> str:
    """A problem's location: ``file``, ``file:line`` or ``file:line:column``."""
    if not problem.line:
        return problem.file
    return f"{problem.file}:{problem.line}" + (f":{problem.column}" if problem.column else "")


def problem_document(problem: Problem) -> dict[str, Any]:
    """A workflow problem in a JSON document: ``{message, hint, location}``."""
    return {"message": problem.message, "hint": problem.hint, "location": where(problem)}


def workflow_failure(problems: list[Problem], file: object | None = None) -> Failure:
    """The failure of a workflow with these problems (``file``: the one named by the user)."""
    n = len(problems)
    name = file if file is not None else (problems[0].file if problems else "the workflow")
    return Failure(f"{n} problem{'s' if n != 1 else ''} in {name}", kind="workflow",
                   location=where(problems[0]) if problems else None, problems=problems)


#: the kind of each error class, the most specific first
_KIND_OF: tuple[tuple[type[BaseException], str], ...] = (
    (AmbiguousRunId, "ambiguous_run_id"),
    (RunNotFound, "run_not_found"),
    (InvalidTrace, "invalid_trace"),
    (StoreError, "store"),
    (ConfigError, "config"),
)


def failure_of(exc: BaseException) -> Failure:
    """The failure to report for an exception that ended a command."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", kind="interrupted", code=130)
    if isinstance(exc, ValidationFailed):
        return workflow_failure(exc.problems)
    if isinstance(exc, PonderError):
        kind = next((k for cls, k in _KIND_OF if isinstance(exc, cls)), None)
        if kind is None:
            from orchestrator.runtime.durable import RunStillRunning

            kind = "run_still_running" if isinstance(exc, RunStillRunning) else "error"
        matches = exc.matches if isinstance(exc, AmbiguousRunId) else None
        return Failure(str(exc), kind=kind, matches=matches)
    return Failure(f"{type(exc).__name__}: {exc}", kind="internal", code=2)


def error_document(failure: Failure) -> dict[str, Any]:
    """The JSON document of a failure (see the module's docstring)."""
    error: dict[str, Any] = {"kind": failure.kind, "message": failure.message,
                             "location": failure.location}
    if failure.problems:
        error["problems"] = [problem_document(p) for p in failure.problems]
    if failure.matches is not None:
        error["matches"] = failure.matches
    if failure.files is not None:
        error["files"] = failure.files
    return {"status": "error", "error": error}


def report(failure: Failure, as_json: bool) -> None:
    """Print a failure on stderr and, with ``as_json``, its document on stdout."""
    for p in failure.problems:
        _err.print(p.format(), highlight=False, markup=False, soft_wrap=True)
    if failure.kind == "interrupted":
        _err.print("[yellow]interrupted[/yellow]")
    elif failure.kind == "internal":
        _err.print(f"[red]internal error:[/red] {escape(failure.message)} "
                   "(run again with --debug for the traceback)", highlight=False,
                   soft_wrap=True)
    else:
        _err.print(f"[red]error:[/red] {escape(failure.message)}", highlight=False,
                   soft_wrap=True)
    if as_json:
        write_json(error_document(failure))
