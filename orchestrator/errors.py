"""Every error Ponder raises on purpose, in one place.

The tree::

    PonderError
    ├── SpecError                  a workflow file or SDK object is wrong
    │   └── ValidationFailed       carries every Problem found (file:line:col + hint)
    ├── ConfigError                bad model/backend/tool configuration (names the value)
    ├── ReferenceResolutionError   a ${...} reference could not be resolved at run time
    │   ├── MissingPathError       a reference's path names a part its value lacks
    │   └── TemplateRenderError    a prompt template failed to render (names its line,
    │                              the expression that failed, and where the step is)
    ├── StepError                  one step failed; carries run id, step id, attempt
    │   ├── ToolError              a tool raised, or its arguments did not validate
    │   ├── OutputSchemaError      an LLM output failed its JSON schema (raw output kept)
    │   ├── StepTimeout            a step ran past its timeout            (retryable)
    │   ├── BudgetExceeded         a token budget stopped a step
    │   └── BackendError           an executor/backend could not answer
    │       ├── BackendUnavailable   connection refused / DNS / reset   (retryable)
    │       └── BackendHTTPError     an HTTP status; 429 and 5xx are retryable
    ├── StoreError                 the trace store failed (names the URL, password hidden)
    │   ├── StoreUnavailable       cannot connect or open: server unreachable, SQLite file
    │   │                          locked by another process, read-only, or not creatable
    │   ├── StoreOutdated          the schema is older than this Ponder: `ponder db upgrade`
    │   ├── RunNotFound            no event of that run id is stored
    │   ├── EventConflict          an event's (run_id, seq) is already stored; nothing of
    │   │                          the batch was written
    │   └── InvalidTrace           an imported trace document is malformed; nothing written
    └── RunCancelled               the run was cancelled (Ctrl-C or cancel())

:func:`is_retryable` is the one place that decides what the scheduler retries, and
:func:`requested_wait_s` how long a failure asked it to wait before the next try;
:func:`backend_errors` is the one place that maps a backend's foreign exceptions onto
this tree (LLM steps and planners alike), so that they keep their retryability.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: how many characters of a user's value a message echoes
SHOWN_CHARS = 60


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A user's value as a message echoes it: its ``repr``, or, for a value longer than
    ``limit`` characters, the ``repr`` of its start and its length, so that one bad
    value of 100 KB makes a one-line message (``'aaa...'... (100000 characters)``).

    :param value: a string (its length counted in characters) or any other value (the
        length of its ``repr``).
    :returns: the text to put in the message in place of ``{value!r}``.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def clipped(text: str, limit: int = SHOWN_CHARS) -> str:
    """A user's text as a message echoes it unquoted: whole, or its first ``limit``
    characters and its length (``aaa... (100000 characters)``)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class PonderError(Exception):
    """Base class of every error Ponder raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a workflow, located in its source.

    :param message: what is wrong, naming the offending value.
    :param hint: a one-line suggestion for the fix.
    :param file: the source file, or ``"<sdk>"`` for workflows built in Python.
    :param line: 1-based line, 0 when unknown.
    :param column: 1-based column, 0 when unknown.
    """

    message: str
    hint: str = ""
    file: str = "<sdk>"
    line: int = 0
    column: int = 0

    def format(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}"
        text = f"{where}: error: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class SpecError(PonderError):
    """A workflow definition is wrong."""


class StepDefinitionError(SpecError, ValueError):
    """A step built in Python (the SDK's builders) has a field of the wrong type or
    value. A :class:`ValueError` too, as pydantic's own error, which it replaces, was."""


def validation_summary(exc: Any) -> str:
    """A pydantic ``ValidationError`` as one line: ``field: message (got value)`` for each
    error, ``; ``-separated (``unknown field `x``` for a name the model lacks)."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(value)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field `{where}`")
        elif err["type"] == "missing":
            parts.append(f"{where}: {err['msg']}")
        else:
            parts.append(f"{where}: {error_words(err)}")
    return "; ".join(parts)


def error_words(err: Any) -> str:
    """One pydantic error's message and the value it refused: ``msg (got value)``. A
    validator of ours (``value_error``) speaks without pydantic's "Value error, " prefix,
    and without the value when its message shows it already."""
    got = shown(err.get("input"))
    if err["type"] != "value_error":
        return f"{err['msg']} (got {got})"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg if got in msg else f"{msg} (got {got})"


class ValidationFailed(SpecError):
    """A workflow has one or more problems; all are in :attr:`problems`."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems))


class ConfigError(PonderError):
    """Bad configuration of a model, backend or tool (the message names the value)."""


class ReferenceResolutionError(PonderError):
    """A reference could not be resolved against the run's values."""


class MissingPathError(ReferenceResolutionError):
    """A reference's path names a part its value does not have.

    :param reference: the reference as written (``${steps.a.output.area}``).
    :param detail: what is missing (``no `area` in 2000``).
    :param where: the reference's place (``step 'b' args.x (flow.yaml:14)``), empty when
        unknown.
    """

    def __init__(self, reference: str, detail: str, where: str = "") -> None:
        self.reference = reference
        self.detail = detail
        self.where = where
        super().__init__(f"{where}: `{reference}`: {detail}" if where
                         else f"`{reference}`: {detail}")


class TemplateRenderError(ReferenceResolutionError):
    """A Jinja2 template failed to render.

    :param detail: what went wrong, as Jinja2 or the template's own code said it.
    :param line: the 1-based line of the template that failed, 0 when unknown.
    :param expression: the expression or reference that failed (``steps.a.output[3]``,
        or the ``{{ ... }}`` tag of the line when no single reference is to blame);
        empty when unknown.
    :param where: the template's place (``step 'b' prompt (flow.yaml:14)``), empty
        until :meth:`located` names it.
    :param source: the template's text (not in the message), to tell which of a step's
        templates failed.
    """

    def __init__(self, detail: str, *, line: int = 0, expression: str = "",
                 where: str = "", source: str = "") -> None:
        self.detail = detail
        self.line = line
        self.expression = expression
        self.where = where
        self.source = source
        head = where or "template" + (f" line {line}" if line else "")
        super().__init__(f"{head}: {expression}: {detail}" if expression else f"{head}: {detail}")

    def located(self, where: str) -> TemplateRenderError:
        """The same error, its message led by the template's place instead of its line."""
        return TemplateRenderError(self.detail, line=self.line, expression=self.expression,
                                   where=where, source=self.source)


class StepError(PonderError):
    """A step failed.

    :param message: what happened.
    :param step_id: the step, when known.
    :param raw_output: the raw output kept for the user, if any.
    """

    def __init__(
        self, message: str, *, step_id: str | None = None, raw_output: str | None = None,
        usage: Any = None,
    ) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.raw_output = raw_output
        #: tokens the failed attempt consumed (a Usage), when known
        self.usage = usage


class ToolError(StepError):
    """A tool raised or was given arguments that do not validate."""


class OutputSchemaError(StepError):
    """An LLM's output did not match the step's output schema after every repair try."""


class StepTimeout(StepError):
    """A step attempt ran past its timeout."""


class BackendError(StepError):
    """An executor backend failed to answer."""


class BackendUnavailable(BackendError):
    """The backend could not be reached (the message names the URL)."""


class BackendHTTPError(BackendError):
    """The backend answered with an HTTP error status.

    :param retry_after_s: how long the server asked to wait (its ``Retry-After``), when
        it said.
    """

    def __init__(self, message: str, *, status: int, step_id: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, step_id=step_id)
        self.status = status
        self.retry_after_s = retry_after_s


class BudgetExceeded(StepError):
    """A token budget stopped a step: not dispatched, or its repairs stopped."""


class RunCancelled(PonderError):
    """The run was cancelled."""


def is_retryable(exc: BaseException) -> bool:
    """Decide whether a failed attempt is worth another try.

    Retryable: timeouts, connection failures, HTTP 429 and 5xx, and a tool that raised
    Python's ``TimeoutError`` or ``ConnectionError`` (or a subclass: a network tool's
    transient failure). Everything else (any other exception of a tool, a schema failure
    after repair, a bad request) is final.
    """
    if isinstance(exc, StepTimeout | BackendUnavailable | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, ToolError) and isinstance(exc.__cause__, TimeoutError | ConnectionError):
        return True
    if isinstance(exc, BackendHTTPError):
        return exc.status == 429 or exc.status >= 500
    return False


#: the longest wait :func:`requested_wait_s` reports: a day, the most a retry policy's
#: ``max_backoff_s`` may be
MAX_REQUESTED_WAIT_S = 86400.0


def requested_wait_s(exc: BaseException) -> float | None:
    """How long the backend asked to be left alone before the next try: the
    ``retry_after_s`` an error carries, in seconds: a :class:`BackendHTTPError`'s
    ``Retry-After``, or another error's that relays one (an engine pool all of whose
    engines are busy answers ``PoolBusy``, a :class:`BackendUnavailable`, with the soonest
    end of their back-offs). A value that is not a number counts as none.

    :returns: a positive number of seconds, at most :data:`MAX_REQUESTED_WAIT_S` (a
        longer one, ``inf`` included, counts as that: no retry policy waits longer, and
        the number goes into a trace as JSON), or None when the error asked for no wait:
        no ``Retry-After``, or one of 0, a date past, or a negative or NaN number (as a
        relayed one may be), all of which, taken at their word, would ask again at once.
    """
    wait = getattr(exc, "retry_after_s", None)
    if not isinstance(wait, int | float) or isinstance(wait, bool) or not wait > 0:
        return None  # (NaN too)
    return min(float(wait), MAX_REQUESTED_WAIT_S)


@contextmanager
def backend_errors(step_id: str) -> Iterator[None]:
    """Translate foreign exceptions of a backend call into Ponder's, keeping retryability.

    Timeouts become :class:`StepTimeout`, connection errors :class:`BackendUnavailable`
    (both retryable), anything else :class:`BackendError`; Ponder's own errors pass
    through, a :class:`StepError` without a step named after ``step_id``. Exceptions
    that are not an ``Exception`` (cancellation, ``GeneratorExit``) pass untouched, so
    the block may hold the ``yield`` of a stream.

    :param step_id: the step whose call this is (named in every message).
    :raises StepTimeout, BackendUnavailable, BackendError: as above.
    """
    try:
        yield
    except StepError as exc:
        if exc.step_id is None:
            exc.step_id = step_id
        raise
    except PonderError:
        raise
    except TimeoutError as exc:
        raise StepTimeout(f"step {step_id!r}: the backend timed out: {exc}",
                          step_id=step_id) from exc
    except ConnectionError as exc:
        raise BackendUnavailable(f"step {step_id!r}: the backend is unreachable: {exc}",
                                 step_id=step_id) from exc
    except Exception as exc:
        raise BackendError(f"step {step_id!r}: the backend failed: {type(exc).__name__}: {exc}",
                           step_id=step_id) from exc


class StoreError(PonderError):
    """The trace store failed.

    :param message: what happened, naming the store (password hidden).
    :param url: the store's URL with the password hidden, when known.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached (server down, file locked or read-only)."""


class StoreOutdated(StoreError):
    """The database's schema revision is older than this Ponder's; run ``ponder db upgrade``.

    :param current: the database's revision (``None``: no Ponder schema yet).
    :param head: the revision this Ponder needs.
    """

    def __init__(self, message: str, *, url: str, current: str | None, head: str) -> None:
        super().__init__(message, url=url)
        self.current = current
        self.head = head


class RunNotFound(StoreError):
    """No event of the run is stored.

    :param run_id: the run asked for.
    """

    def __init__(self, run_id: str, message: str | None = None) -> None:
        super().__init__(message or f"no run {shown(run_id)} in the trace store")
        self.run_id = run_id


class AmbiguousRunId(RunNotFound):
    """A shortened run id that starts several runs' ids.

    :param run_id: the prefix given; ``matches``: some of the runs it starts.
    """

    def __init__(self, run_id: str, matches: list[str]) -> None:
        some = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        super().__init__(run_id, f"run id {shown(run_id)} is the start of several runs' ids "
                                 f"({some}); give more of it")
        self.matches = matches


class EventConflict(StoreError):
    """An event's ``(run_id, seq)`` is already stored, or appears twice in one batch.

    The batch it came in was not written at all.

    :param run_id: the run of the first conflicting event.
    :param seq: its sequence number.
    """

    def __init__(self, message: str, *, run_id: str, seq: int) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.seq = seq


class InvalidTrace(StoreError):
    """An imported trace document is malformed; the store was left unchanged.

    :param problems: each problem, prefixed with its location in the document
        (``events[3].step_id: Field required``).
    """

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:10]
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__("invalid trace document:\n  " + "\n  ".join(shown) + more)
        self.problems = problems


def without_step_id(step_id: str, error: str | None) -> str:
    """A step's error where the step is named already (a run's error, a table's row):
    without the ``step 'x':`` (or ``step 'x'``) it begins with when the error was made
    knowing its step (a plan, a backend, a timeout), which read then ``step 'x' failed:
    step 'x': ...``."""
    text = error or ""
    named = f"step {step_id!r}"
    if text.startswith(named + ": "):
        return text[len(named) + 2:]
    if text.startswith(named + " "):
        return text[len(named) + 1:]
    return text
