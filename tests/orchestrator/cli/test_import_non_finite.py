"""``ponder import`` refuses a document holding NaN or Infinity, which JSON has no number
for (Python's parser reads them; ``ponder export`` never writes them): the run was
imported with the value silently turned into null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.orchestrator.cli.test_json_errors import ponder

FLOW = """\
name: w
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "6 * 7"}}
"""


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_document_with_a_number_json_has_none_for_is_refused(tmp_path: Path,
                                                               constant: str) -> None:
    flow = tmp_path / "w.yaml"
    flow.write_text(FLOW)
    db = f"sqlite:///{tmp_path / 'trace.db'}"
    run_id = json.loads(ponder("run", str(flow), "--db", db, "--json").stdout)["run_id"]
    exported = tmp_path / "run.json"
    assert ponder("export", run_id, "-o", str(exported), "--db", db).exit_code == 0
    text = exported.read_text()
    assert text.count('"output": 42') >= 1
    exported.write_text(text.replace('"output": 42', f'"output": {constant}'))
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = ponder("import", str(exported), "--db", other)
    assert result.exit_code == 1
    assert result.stderr == (f"error: {exported}: not JSON: {constant} is not a JSON number "
                             "(a document written by `ponder export` has none)\n")
    # nothing was stored: the import stopped before it created the store (which
    # `ponder runs` now says of a store file that does not exist)
    assert not (tmp_path / "other.db").exists()
