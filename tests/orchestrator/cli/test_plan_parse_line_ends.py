"""`ponder plan parse FILE`: the line its "not UTF-8" error names counts a LF, a CRLF and a
lone CR each as one line end, as the plan parsers do (it counted LF only, so a file with
lone-CR line ends was said to fail on line 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import error_of
from tests.orchestrator.cli.test_json_errors import ponder as invoke

LINES = [b'1. calc("1+1")', b'2. calc("2+2")', b'3. calc("caf\xe9")', b"4. join()"]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path, end: bytes) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_bytes(end.join(LINES) + end)
    error = error_of(invoke("plan", "parse", str(plan), "--json"), "file", code=2)
    assert error["location"] == f"{plan}:3"
    assert error["message"].startswith(f"{plan}:3: not UTF-8 text: byte 0xe9")


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_the_parser_counts_lines_the_same_way(tmp_path: Path, end: bytes) -> None:
    # the same plan, valid UTF-8, with an error on line 3: the parser names line 3 too
    plan = tmp_path / "plan.txt"
    plan.write_bytes(end.join([*LINES[:2], b"3. calc(", LINES[3]]) + end)
    result = invoke("plan", "parse", str(plan))
    assert result.exit_code == 1
    assert f"{plan}:3: error:" in result.stderr


def test_a_lone_cr_then_a_crlf_are_two_line_ends(tmp_path: Path) -> None:
    plan = tmp_path / "plan.txt"
    plan.write_bytes(b'1. calc("1+1")\r\r\n\xff')  # a lone CR, then a CRLF: line 3
    error = error_of(invoke("plan", "parse", str(plan), "--json"), "file", code=2)
    assert error["location"] == f"{plan}:3"
