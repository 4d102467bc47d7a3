"""Reading the file `ponder import` takes: its text, and the JSON documents in it."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any

from orchestrator.store import StoredEvent, fold_events, is_interrupted
from orchestrator.store._codec import nonfinite_as_strings

#: the byte order marks a text file may begin with, and the codec of the text after each
#: (UTF-32's before UTF-16's: FF FE 00 00 begins with FF FE)
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32", "utf-32-le"),
    (codecs.BOM_UTF32_BE, "UTF-32", "utf-32-be"),
    (codecs.BOM_UTF8, "UTF-8", "utf-8"),
    (codecs.BOM_UTF16_LE, "UTF-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "UTF-16", "utf-16-be"),
)


class NotText(Exception):
    """The bytes are not text in the encoding they declare (UTF-8 when they declare none).

    :param encoding: that encoding's name, as a message says it (``UTF-8``).
    :param start: the offset of the first byte that does not decode.
    """

    def __init__(self, encoding: str, start: int) -> None:
        super().__init__(f"not {encoding} text (byte {start})")
        self.encoding = encoding
        self.start = start


def decode_text(data: bytes) -> str:
    """The text of a file: UTF-8, or the encoding its byte order mark names.

    A UTF-8 file that begins with a byte order mark (an editor's, PowerShell's
    ``Out-File -Encoding utf8``) is read without it, and one in UTF-16 or UTF-32 with its
    mark (Windows PowerShell's ``ponder export RUN > FILE``) is read as such: JSON allows
    neither the mark nor those encodings in a document, but the text is the same.

    :raises NotText: naming the encoding and the first byte that does not decode.
    """
    for bom, name, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec)
            except UnicodeDecodeError as exc:
                raise NotText(name, len(bom) + exc.start) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotText("UTF-8", exc.start) from None


#: the white space JSON allows between values
_SPACE = re.compile(r"[ \t\n\r]*")


def json_documents(text: str, parse_constant: Callable[[str], Any]) -> list[tuple[int, Any]]:
    """Each JSON document of ``text``, with the line it begins on: one, as ``ponder
    export`` writes it, or several one after another (``ponder export A; ponder export
    B``, each a line of its own, into one file or pipe).

    :param parse_constant: called for ``NaN``, ``Infinity`` and ``-Infinity`` (see
        :func:`json.loads`).
    :raises json.JSONDecodeError: at the first place that is not JSON, located in
        ``text`` (no document at all is "Expecting value" at its end).
    """
    decoder = json.JSONDecoder(parse_constant=parse_constant)
    found: list[tuple[int, Any]] = []
    pos = _skip_space(text, 0)
    while pos < len(text) or not found:
        doc, end = decoder.raw_decode(text, pos)
        found.append((text.count("\n", 0, pos) + 1, doc))
        pos = _skip_space(text, end)
    return found


def _skip_space(text: str, pos: int) -> int:
    """The position of the first character at or after ``pos`` that is not white space."""
    space = _SPACE.match(text, pos)
    return space.end() if space is not None else pos


class NotAContinuation(Exception):
    """A run of an imported document that the trace store holds otherwise than as a part
    of it; the message says how (``run X ...``)."""


def rest_of(run: list[StoredEvent], stored: list[StoredEvent]) -> list[StoredEvent]:
    """The events of a document's run (in ``seq`` order) that follow those the trace
    store holds of it: all of them for a run it does not hold, none for one it holds as
    the document has it, the rest for one it holds a part of (a run exported before it
    went on elsewhere, resumed in another store: its first events are the same, and an
    import adds what followed; what is stored is never changed).

    :raises NotAContinuation: when a stored event differs from the document's of the
        same ``seq`` (the run went on in two stores), the store holds more of the run
        than the document, or the run is running in the store (its process alive, or on
        another host, where that cannot be checked).
    """
    if not stored:
        return run
    rid = run[0].run_id
    for have, given in zip(stored, run, strict=False):
        if have.seq != given.seq or _same(have) != _same(given):
            raise NotAContinuation(
                f"run {rid} is in the trace store already, and its event {given.seq} "
                f"({given.kind}) there differs from the document's: the run went on in two "
                "stores")
    if len(stored) > len(run):
        raise NotAContinuation(f"run {rid} is in the trace store already, with more of it "
                               f"({len(stored)} events) than the document ({len(run)})")
    if len(stored) < len(run) and fold_events(stored).status == "running" \
            and not is_interrupted(stored):
        raise NotAContinuation(f"run {rid} is running in the trace store now (or was "
                               "written on another host, where that cannot be checked): "
                               "import it once it has stopped")
    return run[len(stored):]


def _same(event: StoredEvent) -> Any:
    """An event as it compares with another: its JSON, a NaN equal to a NaN."""
    return nonfinite_as_strings(event.model_dump(mode="json"))
