"""``ponder schema --write PATH`` where PATH is a file says so: it said "cannot write
PATH/workflow.schema.json: File exists", naming a file that cannot exist."""

from __future__ import annotations

from pathlib import Path

from tests.orchestrator.cli.test_json_errors import one_line_error, ponder


def test_write_into_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "schemas.json"
    target.write_text("{}")
    one_line_error(ponder("schema", "--write", str(target)),
                   f"--write {target}: a file, not a folder; give a folder (it is made "
                   "if missing)")
    assert target.read_text() == "{}"


def test_write_makes_the_folder(tmp_path: Path) -> None:
    result = ponder("schema", "--write", str(tmp_path / "new" / "schemas"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "new" / "schemas" / "workflow.schema.json").is_file()
