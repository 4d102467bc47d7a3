"""Events to storage rows and back: an envelope (run, seq, kind, step, time) and a
JSON payload holding every other field.

Decoding never fails: an event of a kind this Ponder does not know, or one that no
longer validates against its class, comes back as a :class:`RawEvent`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import re
import typing
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol

import pydantic_core
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from orchestrator.runtime.events import EVENT_ADAPTER, Event
from orchestrator.store._errors import EventConflict, RunNotFound, StoreError
from orchestrator.store._models import RawEvent, StoredEvent

_log = logging.getLogger(__name__)
_ENVELOPE = frozenset({"run_id", "seq", "kind", "ts"})
# A str holds astral characters whole, so any surrogate in it is a lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")
SEQ_MAX = 2**31 - 1
"""The largest ``seq`` a store holds (PostgreSQL's ``integer``; SQLite's is larger)."""


def _event_kinds() -> frozenset[str]:
    union = typing.get_args(Event)[0]
    return frozenset(cls.model_fields["kind"].default for cls in typing.get_args(union))


KNOWN_KINDS: frozenset[str] = _event_kinds()
"""The ``kind`` tags of :data:`orchestrator.runtime.events.Event`, derived from the union."""


EventRow = tuple[str, int, str, "str | None", float, str]
"""An ``events`` row in column order (run_id, seq, kind, step_id, ts, payload), the payload
as JSON text."""


def _payload(event: StoredEvent) -> dict[str, Any]:
    try:
        return event.model_dump(mode="json", exclude=set(_ENVELOPE))
    except PydanticSerializationError as exc:
        raise StoreError(
            f"event {event.seq} ({event.kind}) of run {event.run_id!r} cannot be stored "
            f"as JSON: {exc}"
        ) from exc
    except UnicodeError:  # a lone surrogate in a key: the store retries (see utf8_safe)
        raise
    except (ValueError, RecursionError) as exc:  # pydantic's: "... (depth exceeded)"
        raise StoreError(
            f"event {event.seq} ({event.kind}) of run {event.run_id!r} cannot be stored "
            f"as JSON: a value in it is nested too deeply ({exc})"
        ) from exc


NonFinite = Literal["constants", "strings"]
"""How a payload's text writes NaN and the infinities: as the constants ``NaN``,
``Infinity`` and ``-Infinity`` (SQLite and the memory store keep them), or as those words
in JSON strings (PostgreSQL's ``json`` has no such constants and refuses the text)."""


def encode_row(event: StoredEvent, *, nonfinite: NonFinite = "constants") -> EventRow:
    """The event as an :data:`EventRow`, its payload serialized once: the text SQLite
    stores, and PostgreSQL casts to its ``json`` column, which keeps it as it is.

    Only an event's typed float fields (a latency, a delay, a priority) can hold NaN or
    an infinity here: in a value of no declared type (an output, an input) pydantic
    writes them as ``null`` already, on every backend. Written as strings (``nonfinite=
    "strings"``, PostgreSQL's), they read back as the same floats, which pydantic parses
    from those words for a float field.

    :raises StoreError: when a field (a step's output, say) is not JSON-serializable.
    """
    payload = _payload(event)
    step_id = payload.get("step_id")
    return (
        event.run_id,
        event.seq,
        event.kind,
        step_id if isinstance(step_id, str) else None,
        event.ts,
        dumps_payload(payload, nonfinite=nonfinite),
    )


def dumps_payload(payload: dict[str, Any], *, nonfinite: NonFinite = "constants") -> str:
    """A JSON-ready payload as text that :func:`json.loads` reads back as ``payload``
    (with ``nonfinite="strings"``: each NaN or infinity as the string naming it).

    pydantic_core's serializer is about 3x faster than :func:`json.dumps`, and writes
    NaN and the infinities in either form at no further cost. Text that UTF-8 cannot
    hold (a lone surrogate) falls back to :func:`json.dumps`, which escapes it.
    """
    try:
        return pydantic_core.to_json(payload, inf_nan_mode=nonfinite).decode()
    except PydanticSerializationError:
        if nonfinite == "constants":
            return json.dumps(payload)
        try:
            return json.dumps(payload, allow_nan=False)
        except ValueError:  # a NaN or an infinity: written as the string naming it
            return json.dumps(nonfinite_as_strings(payload))


def nonfinite_as_strings(value: Any) -> Any:
    """``value`` with each NaN or infinity in it replaced by the string naming it, as
    pydantic_core's ``inf_nan_mode="strings"`` writes it (a float field reads it back)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: nonfinite_as_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nonfinite_as_strings(v) for v in value]
    return value


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (unless it is off already) for the block.

    For building many objects that are kept, in one go, with no reference cycle among
    them (a page of decoded events, a fold): each collection the allocations trigger
    scans the young objects, and then ever more of the old ones too, finding nothing
    to free. Reading and folding a run of 200,000 events spent about half its CPU time
    there. Objects are still freed by their reference counts; a cycle made meanwhile
    elsewhere is collected after the block.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def decode_rows(
    run_id: str, rows: Iterable[tuple[int, str, float, Mapping[str, Any] | str]]
) -> list[StoredEvent]:
    """:func:`decode` each ``(seq, kind, ts, payload)`` row of a run, in order, with the
    garbage collector paused (see :func:`paused_gc`).

    A payload is a mapping, or its JSON text as the store holds it (see
    :func:`decode_text`).
    """
    tail = ',"run_id":' + json.dumps(run_id) + ',"seq":'
    with paused_gc():
        return [
            decode_text(run_id, seq, kind, ts, payload, tail)
            if isinstance(payload, str)
            else decode(run_id, seq, kind, ts, payload)
            for seq, kind, ts, payload in rows
        ]


def decode_text(
    run_id: str, seq: int, kind: str, ts: float, payload: str, tail: str | None = None
) -> StoredEvent:
    """:func:`decode` a row whose payload is JSON text: the same event, validated as
    strictly, in about three quarters of the CPU time.

    A known kind's payload is validated from the text with the envelope appended to it
    (one pass of pydantic's parser, instead of :func:`json.loads`, a merged dict and a
    validation of that dict). What that refuses (a lone surrogate's escape, which
    :func:`json.loads` reads; a payload that no longer validates; a non-finite ``ts``)
    is decoded as :func:`decode` does it, warning and :class:`RawEvent` included.

    :param tail: ``',"run_id":' + json.dumps(run_id) + ',"seq":'``, made once per page
        by :func:`decode_rows`.
    """
    if kind in KNOWN_KINDS and payload[:1] == "{" and payload[-1:] == "}":
        if tail is None:
            tail = ',"run_id":' + json.dumps(run_id) + ',"seq":'
        # the envelope goes last: where the payload holds one of its keys, it wins (as
        # in decode); a known kind's tag needs no escape
        body, sep = (payload[:-1], tail) if payload != "{}" else ("{", tail[1:])
        with contextlib.suppress(ValidationError):
            return EVENT_ADAPTER.validate_json(f'{body}{sep}{seq},"kind":"{kind}","ts":{ts!r}}}')
    return decode(run_id, seq, kind, ts, json.loads(payload))


def decode(run_id: str, seq: int, kind: str, ts: float, payload: Mapping[str, Any]) -> StoredEvent:
    """Rebuild an event from its row; unknown or no longer valid kinds become RawEvent."""
    data = {**payload, "run_id": run_id, "seq": seq, "kind": kind, "ts": ts}
    if kind in KNOWN_KINDS:
        try:
            return EVENT_ADAPTER.validate_python(data)
        except ValidationError as exc:
            # An old trace must stay readable after an event class changes shape.
            _log.warning("event %s of run %r kept raw: %s", seq, run_id, exc)
    return RawEvent.model_validate(data)


def parse_strict(data: Any) -> StoredEvent:
    """Validate an event from an untrusted document: known kinds against their class.

    :raises ValidationError: when the envelope or a known kind's fields are wrong.
    """
    if isinstance(data, Mapping) and data.get("kind") in KNOWN_KINDS:
        return EVENT_ADAPTER.validate_python(data)
    return RawEvent.model_validate(data)


def _scrub(value: Any) -> Any:
    """``value`` with each lone surrogate of its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def utf8_safe(events: Iterable[StoredEvent]) -> list[StoredEvent]:
    """The events with every lone surrogate in their text replaced by U+FFFD.

    Text read with ``surrogateescape`` (a file or a process's output in an unknown
    encoding) can hold lone surrogates. In a payload's values they are kept, as JSON
    escapes; but UTF-8, and so SQLite's and PostgreSQL's text columns, cannot hold
    them, nor can pydantic's JSON in a dict key. A batch that fails for that reason is
    stored as this returns it, on every backend.
    """
    safe: list[StoredEvent] = []
    for e in events:
        data = _scrub(e.model_dump(mode="python"))
        if isinstance(e, RawEvent):
            safe.append(RawEvent.model_validate(data))
        else:
            safe.append(EVENT_ADAPTER.validate_python(data))
    return safe


_COLUMN_TEXT = ("step_id", "workflow", "source", "parent_run_id", "parent_step_id", "error")


def check_column_text(event: StoredEvent) -> None:
    """What a SQL store's text columns refuse, the memory store refuses too.

    :raises UnicodeEncodeError: when a field a SQL store keeps in a column of its own
        (the step id; a run's workflow, source, parent and error) holds a lone surrogate.
    """
    fields = _COLUMN_TEXT if event.kind in ("run_started", "run_finished") else _COLUMN_TEXT[:1]
    for name in fields:
        value = getattr(event, name, None)
        if isinstance(value, str):
            value.encode("utf-8")


def is_encoding_error(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, text that UTF-8 cannot encode."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, UnicodeEncodeError):
            return True
        seen.add(id(cur))
        orig = getattr(cur, "orig", None)
        cur = orig if isinstance(orig, BaseException) else cur.__cause__
    return False


class _Placed(Protocol):
    @property
    def run_id(self) -> str: ...
    @property
    def seq(self) -> int: ...


def check_batch(encoded: Iterable[_Placed]) -> None:
    """:raises EventConflict: when two events of the batch share ``(run_id, seq)``.
    :raises ValueError: when an event's ``seq`` is below 0 or above :data:`SEQ_MAX`
        (every backend refuses it alike: SQLite's driver overflowed, PostgreSQL's
        column is an ``integer``, memory kept it); when its run id holds a NUL character
        (PostgreSQL's text cannot: no backend stores such a run, and every read by such
        an id answers that there is no such run, see :func:`no_run_id`).

    :param encoded: the batch's events, encoded or not.
    """
    seen: set[tuple[str, int]] = set()
    for enc in encoded:
        if no_run_id(enc.run_id):
            raise ValueError(
                f"an event's run id {enc.run_id!r} holds a NUL character, which no run id "
                "may (the batch was not written)"
            )
        if not 0 <= enc.seq <= SEQ_MAX:
            raise ValueError(
                f"an event of run {enc.run_id!r} has seq {enc.seq}: a seq is from 0 to "
                f"{SEQ_MAX} (the batch was not written)"
            )
        key = (enc.run_id, enc.seq)
        if key in seen:
            raise conflict_error(enc.run_id, enc.seq, within_batch=True)
        seen.add(key)


def no_run_id(run_id: str) -> bool:
    """Whether ``run_id`` can be no stored run's id: it holds a NUL character, which
    PostgreSQL's text cannot hold and :func:`check_batch` refuses on every backend."""
    return "\x00" in run_id


def continued_runs(events: Sequence[StoredEvent], continues: Collection[str]) -> list[str]:
    """The runs of ``continues`` (see ``TraceStore.append``) with an event in the batch:
    the ones that must still be stored for it to be written."""
    if not continues:
        return []
    return [run_id for run_id in dict.fromkeys(e.run_id for e in events) if run_id in continues]


def run_gone(run_id: str) -> RunNotFound:
    """The error for a batch that goes on with a run the store no longer holds."""
    return RunNotFound(run_id, (
        f"run {run_id!r} is no longer in the trace store: it was deleted (by `ponder gc`, "
        "say) after it was read to go on with it; nothing more of it was written"))


def conflict_error(run_id: str, seq: int, *, within_batch: bool = False) -> EventConflict:
    """The error for an event whose place in its run is taken."""
    where = "appears twice in the batch" if within_batch else "is already stored"
    return EventConflict(
        f"event {seq} of run {run_id!r} {where} (the batch was not written)",
        run_id=run_id,
        seq=seq,
    )
