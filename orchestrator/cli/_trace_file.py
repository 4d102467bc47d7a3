"""Reading the file `ponder import` takes: its text, and the JSON documents in it."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any

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
