"""Reading the file `ponder import` takes: its text, and the JSON documents in it."""

from __future__ import annotations

import codecs

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
