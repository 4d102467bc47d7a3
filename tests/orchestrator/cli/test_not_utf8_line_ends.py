"""A workflow file that is not UTF-8 is located at the line YAML counts: a LF, a CRLF and a
lone CR each end a line (only LF was counted: a file with lone-CR line ends was said to
fail on line 1, at a column past the end of that line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke

LINES = [b"name: x", b"steps:", b"  - id: \xe9"]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path, end: bytes, command: str) -> None:
    flow = tmp_path / "w.yaml"
    flow.write_bytes(end.join(LINES) + end)
    error = error_of(invoke(command, str(flow), "--json"), "workflow")
    [problem] = error["problems"]
    assert problem["location"] == f"{flow}:3:9"
    assert problem["message"].startswith("not UTF-8 text: byte 0xe9")


def test_the_column_counts_bytes_after_a_unicode_line_separator(tmp_path: Path) -> None:
    flow = tmp_path / "w.yaml"
    flow.write_bytes("name: x\u2028é\nsteps: \xe9".encode() + b"\xff")
    [problem] = error_of(invoke("validate", str(flow), "--json"), "workflow")["problems"]
    assert problem["location"] == f"{flow}:3:10"
