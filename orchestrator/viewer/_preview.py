"""Previews of a step's large values, which the run page's first read carries instead of
them: a step's input, output and raw texts of megabytes made every read of the run's
events megabytes each, and the page slow to open and to draw.

With ``preview=true`` (``GET /api/v1/runs/{id}/events``, ``/keyframe?events_to=``,
``/stream``), a value of an event's :data:`PREVIEW_FIELDS` (a step's input, output and
raw texts, the run's inputs and output) whose text is longer than
:data:`PREVIEW_CHARS` characters is cut: a string to its first :data:`PREVIEW_CHARS`
characters, followed by a marker (:func:`marker`); each longer string inside a step's
input or output likewise, and an input or output still longer than
:data:`PREVIEW_WHOLE_CHARS` as JSON becomes the start of its JSON text, with the marker.
The event then says which of its fields were cut and their full sizes in UTF-8 bytes
(``truncated``: ``{"output": 4980736}``); the step's own events
(``/events?step_id=``), which the page reads when the step is opened, are never cut.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from orchestrator.store import StoredEvent

__all__ = ["PREVIEW_CHARS", "PREVIEW_FIELDS", "PREVIEW_WHOLE_CHARS", "marker", "preview_json"]

PREVIEW_CHARS = 16_384
"""The most characters of a string a preview keeps."""
PREVIEW_WHOLE_CHARS = 4 * PREVIEW_CHARS
"""The most characters of JSON an input or output kept as a structure holds."""
PREVIEW_FIELDS: dict[str, tuple[str, ...]] = {
    "run_started": ("inputs",),
    "run_finished": ("output",),
    "step_started": ("input",),
    "step_succeeded": ("output", "raw"),
    "step_failed": ("raw",),
    "plan_error": ("raw",),
    "plan_decision": ("raw",),
    "plan_call": ("text",),
}
"""The fields previewed, by event kind: values the page only shows (never what it folds),
and the run's inputs and output, which it does not show (a run's output is often its last
step's, megabytes again)."""


def marker(n_bytes: int) -> str:
    """What follows a cut text: ``… [truncated, 4,980,736 bytes]``."""
    return f"\u2026 [truncated, {n_bytes:,} bytes]"


#: the bytes of a string's UTF-8 text that its JSON text escapes (no byte of a character
#: beyond ASCII is one of them)
_ESCAPED = bytes(range(0x20)) + b'"\\'


def _size(value: Any) -> int:
    """``value``'s size in UTF-8 bytes: a string's own, another value's JSON text's
    (``json.dumps(value, ensure_ascii=False)``'s)."""
    if isinstance(value, str):
        return _text_size(value)
    return _json_size(value)


def _text_size(text: str) -> int:
    """``text``'s size in UTF-8 bytes, counted without encoding it when it is ASCII."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _json_size(value: Any) -> int:
    """The size in UTF-8 bytes of ``json.dumps(value, ensure_ascii=False)``, its long
    strings sized apart: their JSON escaping took most of a preview's time (a step's
    input of half a megabyte, 40 times in a run), and a string that holds nothing to
    escape is its UTF-8 text between quotes."""
    long: list[str] = []
    rest = _without_long_strings(value, long)
    size = len(json.dumps(rest, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    for text in long:  # each is "" in `rest`
        utf8 = text.encode("utf-8", "surrogatepass")
        if len(utf8.translate(None, _ESCAPED)) == len(utf8):
            size += len(utf8)
        else:
            size += len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2
    return size


def _without_long_strings(value: Any, long: list[str]) -> Any:
    """``value`` with each string value longer than :data:`PREVIEW_CHARS` (not a key) made
    empty, and added to ``long``; ``value`` itself when it holds none."""
    if isinstance(value, str):
        if len(value) <= PREVIEW_CHARS:
            return value
        long.append(value)
        return ""
    if isinstance(value, dict):
        n = len(long)
        out = {k: _without_long_strings(v, long) for k, v in value.items()}
        return out if len(long) > n else value
    if isinstance(value, list | tuple):
        n = len(long)
        items = [_without_long_strings(v, long) for v in value]
        return items if len(long) > n else value
    return value


def _cut_strings(value: Any) -> tuple[Any, bool, int]:
    """``value`` with each string longer than :data:`PREVIEW_CHARS` cut, whether any was,
    and about how many characters its JSON text has (at least as many as its strings')."""
    if isinstance(value, str):
        if len(value) <= PREVIEW_CHARS:
            return value, False, len(value) + 2
        short = value[:PREVIEW_CHARS] + marker(_size(value))
        return short, True, len(short) + 2
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        cut, n = False, 2
        for k, v in value.items():
            out[k], c, m = _cut_strings(v)
            cut, n = cut or c, n + m + len(k) + 4
        return (out if cut else value), cut, n
    if isinstance(value, list):
        items = [_cut_strings(v) for v in value]
        cut = any(c for _, c, _ in items)
        return ([v for v, _, _ in items] if cut else value), cut, 2 + sum(m + 1 for *_, m in items)
    return value, False, 8


def _preview(value: Any) -> tuple[Any, int | None]:
    """A field's preview, and ``value``'s size (:func:`_size`) when the preview differs
    from it (``None`` when it does not)."""
    if value is None or isinstance(value, bool | int | float):
        return value, None
    short, cut, n = _cut_strings(value)
    if isinstance(value, str) or n <= PREVIEW_WHOLE_CHARS // 2:  # short enough as JSON
        return short, _size(value) if cut else None
    text = json.dumps(short, ensure_ascii=False)
    if len(text) <= PREVIEW_WHOLE_CHARS:
        return short, _size(value) if cut else None
    size = _size(value)
    return text[:PREVIEW_WHOLE_CHARS] + marker(size), size


def preview_json(event: StoredEvent, dump: Callable[[StoredEvent], str]) -> str:
    """``event`` as JSON text, encoded by ``dump`` when none of its fields is cut (see
    the module's docstring)."""
    fields = PREVIEW_FIELDS.get(event.kind)
    if not fields:
        return dump(event)
    cut: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for name in fields:
        value = getattr(event, name, None)
        short, size = _preview(value)
        if size is not None:
            cut[name] = short
            sizes[name] = size
    if not cut:
        return dump(event)
    # the rest as the store gave it, the cut fields (a string where a structure was,
    # which the model would not encode) added
    doc = event.model_dump(mode="json", exclude=set(cut))
    return json.dumps({**doc, **cut, "truncated": sizes}, separators=(",", ":"))
