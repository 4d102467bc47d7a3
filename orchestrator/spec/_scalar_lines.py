"""Which file line each line of a YAML string value is on.

YAML joins and splits a string's lines by its style: a quoted or plain string folds a
line break into a space and a blank line into a line break, a ``\\n`` escape breaks a
line without one in the file, a folded block (``>``) joins its lines and a literal block
(``|``) keeps them. Rather than a second YAML scanner, the document is parsed again with
a marker at the first character of each of the value's lines in the file: where the
markers land in the parsed value tells which file line each of its characters is on.
"""

from __future__ import annotations

import yaml

#: line breaks as YAML reads them (``\r\n`` is one)
_BREAKS = "\n\r\x85\u2028\u2029"
#: characters that may mark a line: YAML takes them (printable), a template rarely does
_MARKERS = ("\ue000", "\ue001", "\ue002", "\uf8ff")


class Layout:
    """A string value of the document and the file line of each of its characters."""

    def __init__(self, value: str, lines: list[int]) -> None:
        #: the value, and the file line of each of its characters (and of its end)
        self.value, self.lines = value, lines

    def line_of(self, template_line: int, needle: str = "") -> int | None:
        """The file line of line ``template_line`` (1-based) of the value: of ``needle``
        on it where given and found there, else of its first character that is not
        blank. None past the value's last line."""
        starts = [0] + [i + 1 for i, ch in enumerate(self.value) if ch == "\n"]
        if not 0 < template_line <= len(starts):
            return None
        start = starts[template_line - 1]
        end = self.value.find("\n", start)
        end = len(self.value) if end < 0 else end
        at = self.value.find(needle, start, end) if needle else -1
        if at < 0:
            at = start
            while at < end and self.value[at] in " \t":
                at += 1
            if at == end:
                at = start
        return self.lines[at]

    def relaid(self) -> tuple[str, list[int]]:
        """The value with a line break where the file breaks one of its lines (a break
        YAML folded into a space, or joined), and the file line of each of its lines: a
        template's syntax checked on it names a line of the file."""
        text: list[str] = []
        lines = [self.lines[0]]
        for i, ch in enumerate(self.value):
            if i and self.lines[i] != self.lines[i - 1] and self.value[i - 1] != "\n":
                text.append("\n")
                lines.append(self.lines[i])
            text.append(ch)
            if ch == "\n":
                lines.append(self.lines[i + 1])
        return "".join(text), lines


def layout(text: str, start: int, end: int, first_line: int) -> Layout | None:
    """The layout of the string value between offsets ``start`` and ``end`` of the
    document ``text``; None when it cannot be told.

    :param first_line: the file line (1-based) of offset ``start``, as YAML counts lines.

    A character is on the file line of the last line start before it, a line's
    indentation on that line's (whitespace that the value keeps in front of a line, as
    a more indented line of a folded block does, is on the line it indents).
    """
    marker = next((m for m in _MARKERS if m not in text), None)
    if marker is None:
        return None
    pieces: list[str] = []
    marked: list[int] = []  # the file line of each marker, in order
    done, line, i = 0, first_line, start
    while i < end:
        ch = text[i]
        i += 1
        if ch not in _BREAKS:
            continue
        if ch == "\r" and i < len(text) and text[i] == "\n":
            i += 1
        line += 1
        first = i
        while first < end and text[first] in " \t":
            first += 1
        if first < end and text[first] not in _BREAKS:
            pieces += [text[done:first], marker]
            done = first
            marked.append(line)
    pieces.append(text[done:])
    value = _value_at("".join(pieces), start)
    if value is None or value.count(marker) != len(marked):
        return None
    return _layout_of(value, marker, marked, first_line)


def _value_at(text: str, start: int) -> str | None:
    """The value of the scalar that starts at offset ``start`` of the document ``text``."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    stack = [root] if root is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.start_mark.index == start:
                return str(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(v for pair in node.value for v in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def _layout_of(value: str, marker: str, marked: list[int], first_line: int) -> Layout:
    """The layout of ``value``, which holds ``marker`` where each file line of
    ``marked`` starts."""
    chars: list[str] = []
    lines: list[int] = []
    current = first_line
    for k, part in enumerate(value.split(marker)):
        if k:
            current = marked[k - 1]
            # the blanks in front of the marker (kept indentation) are its line's
            back = len(chars)
            while back and chars[back - 1] in " \t":
                back -= 1
            lines[back:] = [current] * (len(lines) - back)
        chars += part
        lines += [current] * len(part)
    lines.append(current)
    return Layout("".join(chars), lines)
