"""Commands under a locale that is not UTF-8 (``LANG=C``, a Latin-1 terminal): a result
holding characters the terminal cannot encode is printed, escaped, not lost to an
internal error; text typed on the command line arrives as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

WORKFLOW = """\
name: accents
inputs:
  who: {type: string, default: "Zoë"}
steps:
  - id: n
    kind: tool
    tool: calc
    args: {expression: "1 + 1"}
outputs:
  text: "café for ${inputs.who} ✓ ${steps.n.output}"
"""

#: a C locale as Python honours it: ASCII streams, command-line bytes kept as surrogates
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
            "PYTHONIOENCODING": ""}


def ponder(*args: str | bytes, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT,
                          capture_output=True, timeout=120, env={**os.environ, **env})


def workflow(tmp_path: Path) -> str:
    path = tmp_path / "accents.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    return str(path)


def test_a_json_result_under_an_ascii_terminal_is_the_same_document(tmp_path: Path,
                                                                     db: str) -> None:
    """It was an internal error (UnicodeEncodeError, exit 2) once the run had succeeded."""
    proc = ponder("run", workflow(tmp_path), "--db", db, "--json", env=C_LOCALE)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.decode("ascii"))
    assert doc["output"] == {"text": "café for Zoë ✓ 2"}
    for cmd in (("show", doc["run_id"], "--json"), ("export", doc["run_id"])):
        shown = ponder(*cmd, "--db", db, env=C_LOCALE)
        assert shown.returncode == 0, (cmd, shown.stderr)
        assert "café for Zoë" in json.dumps(json.loads(shown.stdout.decode("ascii")),
                                           ensure_ascii=False)


def test_a_text_result_under_an_ascii_terminal_is_printed_escaped(tmp_path: Path,
                                                                  db: str) -> None:
    proc = ponder("run", workflow(tmp_path), "--db", db, env=C_LOCALE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("ascii").strip() == "caf\\xe9 for Zo\\xeb \\u2713 2"
    assert b"internal error" not in proc.stderr
    shown = ponder("show", proc.stderr.split(b"run ")[1].split()[0].decode(), "--db", db,
                   env=C_LOCALE)
    assert shown.returncode == 0, shown.stderr


def test_utf8_typed_under_a_c_locale_arrives_as_written(tmp_path: Path, db: str) -> None:
    """Python keeps a C locale's undecodable argument bytes as surrogates: the run got
    '\\udcc3\\udca9' for 'é', and the store kept that."""
    proc = ponder("run", workflow(tmp_path), "--db", db, "--json", "--input",
                  "who=Andr\u00e9".encode(), env=C_LOCALE)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == {"text": "café for André ✓ 2"}


def test_bytes_that_are_not_utf8_are_named(tmp_path: Path) -> None:
    proc = ponder("run", workflow(tmp_path), "--db", "memory://", "--input", b"who=\xff",
                  env=C_LOCALE)
    assert proc.returncode == 1
    assert b"error: --input 'who=\\udcff' is not UTF-8 text" in proc.stderr
