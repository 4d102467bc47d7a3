"""A YAML syntax error is located where the fix goes and says what to do: a quote,
`[` or `{` the file ends inside was located at the file's end; a control character had
no line at all ("position 93" of a "<unicode string>"); a value holding `: ` got a hint
about indentation."""

from __future__ import annotations

import pytest

from orchestrator.spec.loader import parse_yaml

HEAD = "name: w\nsteps:\n  - id: a\n    kind: llm\n"


def _problem(text: str) -> tuple[int, int, str, str]:
    _, _, problems = parse_yaml(text, "w.yaml")
    ((line, column, message, hint),) = [(p.line, p.column, p.message, p.hint)
                                        for p in problems]
    return line, column, message, hint


@pytest.mark.parametrize(("text", "at", "message"), [
    (HEAD + '    prompt: "unclosed\n  - id: b\n    kind: llm\n    prompt: hi\n', (5, 13),
     "YAML syntax: found unexpected end of stream while scanning a quoted scalar that "
     "starts here"),
    (HEAD + "    prompt: hi\n    after: [a, b\n", (6, 12),
     "YAML syntax: expected ',' or ']', but got '<stream end>' while parsing a flow "
     "sequence that starts here"),
    ("name: w\nsteps:\n  - {id: a, kind: llm,\n     prompt: hi\n", (3, 5),
     "YAML syntax: expected ',' or '}', but got '<stream end>' while parsing a flow "
     "mapping that starts here"),
])
def test_what_the_file_ends_inside_is_located_where_it_opens(
        text: str, at: tuple[int, int], message: str) -> None:
    line, column, got, hint = _problem(text)
    assert ((line, column), got) == (at, message)
    assert hint == "the file ends before this is closed: a quote, `]` or `}` is missing"


def test_an_unclosed_bracket_before_more_lines_names_where_it_opens() -> None:
    text = HEAD + "    prompt: hi\n    after: [a\n  - id: b\n    kind: llm\n"
    line, column, message, _ = _problem(text)
    assert (line, column) == (7, 7)  # where the parser failed: `id:` of step b
    assert message == ("YAML syntax: expected ',' or ']', but got ':' (while parsing a flow "
                       "sequence that starts at line 6)")


def test_a_value_holding_a_colon_says_to_quote_it() -> None:
    line, column, message, hint = _problem(HEAD + "    prompt: Answer: yes\n")
    assert (line, column, message) == (5, 19, "YAML syntax: mapping values are not allowed here")
    assert hint.startswith('quote a value that holds `: `, e.g. prompt: "Answer: yes"')


@pytest.mark.parametrize(("newline", "char", "escape"), [
    ("\n", "\x07", "\\x07"), ("\r\n", "\x00", "\\x00"), ("\n", "\ufffe", "\\ufffe")])
def test_a_control_character_is_located(newline: str, char: str, escape: str) -> None:
    text = (HEAD + "    prompt: hi" + char + "\n").replace("\n", newline)
    line, column, message, hint = _problem(text)
    assert (line, column) == (5, 15)
    assert message == f"YAML does not allow the control character U+{ord(char):04X} here"
    assert hint == f"remove it; in a double-quoted string it may be written as `{escape}`"
