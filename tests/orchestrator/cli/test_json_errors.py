"""The ``--json`` contract: whatever goes wrong, stdout holds exactly one JSON document.

A failure is ``{"status": "error", "error": {"kind", "message", "location", ...}}`` with a
non-zero exit status, and the same message as one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.cli._failure import KINDS

QUICKSTART = "examples/quickstart.yaml"
DEEP = "[" * 50_000 + "]" * 50_000


def ponder(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def error_of(result: Result, kind: str, code: int = 1) -> dict[str, Any]:
    """The error of the one document on stdout, checked against the contract."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout.count("\n") == 1, result.stdout
    doc = json.loads(result.stdout)
    assert doc["status"] == "error" and set(doc) == {"status", "error"}
    error: dict[str, Any] = doc["error"]
    assert error["kind"] == kind, error
    assert kind in KINDS and {"kind", "message", "location"} <= set(error)
    assert f"error: {error['message']}\n" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    return error


def one_line_error(result: Result, message: str, code: int = 1) -> None:
    """A failure without --json: nothing on stdout, one line naming it on stderr."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code and result.stdout == "", (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr


def _file(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


# -- ponder run: failures before a run starts ----------------------------------------


@pytest.mark.parametrize(("args", "kind", "message"), [
    (["--input", "spiders=many"], "input", "input 'spiders' must be integer, got 'many'"),
    (["--input", "spiders"], "input", "--input 'spiders' must look like key=value"),
    (["--input", "legs=3"], "input", "unknown input 'legs' (declared: spiders, ants)"),
    (["--inputs-json", "{nope"], "input", "--inputs-json is not valid JSON"),
    (["--inputs-json", "[1]"], "input", "--inputs-json must be a JSON object"),
    (["--inputs-json", '{"spiders": ' + DEEP + "}"], "input", "--inputs-json nests too deeply"),
    (["--input", "spiders=" + DEEP], "input", "input 'spiders' nests too deeply"),
    (["--backend", "bogus"], "config", "--backend 'bogus': unknown LLM backend; installed: "),
    (["--db", "bogus://x"], "config", "unsupported trace store URL bogus://x"),
    (["--tool-executor", "nope"], "config", "--tool-executor 'nope': no such executor; "),
    (["--model", "default=missing.yaml"], "file", "--model default: cannot read missing.yaml"),
    # the second value was taken silently
    (["--input", "spiders=5", "--input", "spiders=7"], "input",
     "--input 'spiders' is given twice ('5', then '7'): give it once"),
], ids=["type", "pair", "unknown", "json", "not-object", "deep-json", "deep-input",
        "backend", "db-url", "executor", "model-file", "twice"])
def test_run_options_that_stop_a_run_before_it_starts(args: list[str], kind: str,
                                                      message: str) -> None:
    base = ["run", QUICKSTART, "--db", "memory://", "--json"]
    if "--backend" not in args:
        base += ["--backend", "simulated"]
    error = error_of(ponder(*base, *args), kind)
    assert error["message"].startswith(message), error


@pytest.mark.parametrize(("name", "content", "where", "message"), [
    ("missing.yaml", None, "", "cannot read"),
    ("folder", "dir", "", "cannot read"),
    ("empty.yaml", "", ":1:1", "the file is empty"),
    ("latin1.yaml", b"name: x\nsteps:\n  - id: \xe9\n", ":3:9",
     "not UTF-8 text: byte 0xe9 at offset 23"),
    ("broken.yaml", "name: x\nsteps:\n  - id: a\n    kind: llm\n   prompt: x\n", ":5:",
     "YAML syntax"),
], ids=["missing", "directory", "empty", "not-utf8", "yaml"])
def test_run_of_a_workflow_that_does_not_load(tmp_path: Path, name: str,
                                              content: str | bytes | None, where: str,
                                              message: str) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        _file(tmp_path, name, content)
    error = error_of(ponder("run", str(path), "--json"), "workflow")
    assert error["message"] == f"1 problem in {path}"
    assert error["location"].startswith(f"{path}{where}"), error
    [problem] = error["problems"]
    assert message in problem["message"] and problem["location"] == error["location"]


def test_run_of_a_model_with_an_unknown_backend_names_its_line(tmp_path: Path) -> None:
    wf = _file(tmp_path, "w.yaml", "name: t\nmodels:\n  fast: {backend: simulatd}\nsteps:\n"
                                   "  - {id: a, kind: llm, model: fast, prompt: hi}\n")
    error = error_of(ponder("run", wf, "--db", "memory://", "--json"), "workflow")
    assert error["location"] == f"{wf}:3:10"
    [problem] = error["problems"]
    assert problem["message"] == "model 'fast': unknown LLM backend 'simulatd'"
    assert problem["hint"].startswith("installed backends: ")
    # no run was started: before, the run started and failed each LLM step
    result = ponder("run", wf, "--db", "memory://")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"{wf}:3:10: error: model 'fast': unknown LLM backend "
                                    "'simulatd'\n    hint: installed backends: ")


def test_run_without_json_reports_the_same_failures_as_one_line(tmp_path: Path) -> None:
    one_line_error(ponder("run", QUICKSTART, "--db", "bogus://x"),
                   "unsupported trace store URL bogus://x")
    one_line_error(ponder("run", QUICKSTART, "--backend", "bogus"),
                   "--backend 'bogus': unknown LLM backend")
    one_line_error(ponder("run", QUICKSTART, "--inputs-json", '{"spiders": ' + DEEP + "}"),
                   "--inputs-json nests too deeply")


def test_a_run_that_fails_prints_its_result_not_an_error(tmp_path: Path) -> None:
    wf = _file(tmp_path, "w.yaml", "name: t\nsteps:\n"
                                   "  - {id: a, kind: tool, tool: calc, args: {expression: '1/0'}}\n")
    result = ponder("run", wf, "--db", "memory://", "--json")
    assert result.exit_code == 1 and result.stdout.count("\n") == 1
    assert json.loads(result.stdout)["status"] == "failed"


# -- a malformed command line --------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["runs", "--limit", "abc"], "Invalid value for '--limit'"),
    (["show"], "Missing argument"),
    (["runs", "--bogus"], "No such option: --bogus"),
    (["gc", "--older-than", "30d"], "No such option: --json"),
], ids=["type", "missing", "unknown-option", "command-without-json"])
def test_a_malformed_command_line_with_json(args: list[str], message: str) -> None:
    error = error_of(ponder(*args, "--json"), "usage", code=2)
    assert message in error["message"]


@pytest.mark.parametrize(("args", "message"), [
    (["--status", "finished"], "--status 'finished': use one of running, interrupted, "),
    (["--limit", "-1"], "--limit -1: use a whole number from 0 to 9223372036854775807"),
    (["--limit", str(2**64)], f"--limit {2**64}: use a whole number from 0 to "),
    (["--offset", str(2**64)], f"--offset {2**64}: use a whole number from 0 to "),
], ids=["status", "negative", "limit-too-large", "offset-too-large"])
def test_runs_refuses_option_values_it_cannot_honour(tmp_path: Path, args: list[str],
                                                     message: str) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    error = error_of(ponder("runs", "--db", db, *args, "--json"), "usage")
    assert error["message"].startswith(message)
    # before: an unknown status listed nothing, a huge number was an internal OverflowError
    one_line_error(ponder("runs", "--db", db, *args), message)


# -- ponder plan parse ---------------------------------------------------------------


def test_plan_parse_failures_with_json(tmp_path: Path) -> None:
    plan = _file(tmp_path, "plan.txt", '1. calc("1+1")\n2. join()\n')
    latin1 = _file(tmp_path, "w.yaml", b"name: x\xe9\n")
    error = error_of(ponder("plan", "parse", str(tmp_path), "--json"), "file", code=2)
    assert error["message"] == f"cannot read {tmp_path}: Is a directory"
    error = error_of(ponder("plan", "parse", plan, "--planner", "nope", "--json"), "config",
                     code=2)
    assert error["message"].startswith("unknown planner 'nope'; known: ")
    error = error_of(ponder("plan", "parse", plan, "--format", "yaml", "--json"), "usage",
                     code=2)
    # a first action numbered below 1 made every valid plan an error ("skips a number")
    error = error_of(ponder("plan", "parse", plan, "--first-id", "0", "--json"), "usage",
                     code=2)
    assert error["message"] == "--first-id 0: the first action's number is 1 or more"
    # a workflow file that is not UTF-8 was a traceback
    error = error_of(ponder("plan", "parse", plan, "--workflow", latin1, "--json"), "workflow",
                     code=2)
    assert error["location"] == f"{latin1}:1:8"
    assert error["problems"][0]["message"] == "not UTF-8 text: byte 0xe9 at offset 7"
    error = error_of(ponder("plan", "parse", plan, "--workflow", "gone.yaml", "--json"),
                     "workflow", code=2)
    assert error["problems"][0]["message"].startswith("cannot read gone.yaml")


def test_inputs_given_to_a_workflow_that_declares_none_are_refused(tmp_path: Path) -> None:
    """They were accepted and ignored: no step can read an undeclared input."""
    wf = _file(tmp_path, "w.yaml", "name: w\nsteps:\n"
               "  - {id: a, kind: tool, tool: calc, args: {expression: '1+1'}}\n")
    error = error_of(ponder("run", wf, "--db", "memory://", "--json", "--input", "topic=x"),
                     "input")
    assert error["message"] == "unknown input 'topic' (the workflow declares no inputs)"


# -- commands without --json: one line, never a traceback ----------------------------


def test_validate_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    bad = _file(tmp_path, "w.yaml", b"name: x\nsteps:\n  - id: \xe9\n")
    result = ponder("validate", bad)
    assert result.exit_code == 1 and "internal error" not in result.stderr
    assert f"{bad}:3:9: error: not UTF-8 text: byte 0xe9 at offset 23" in result.stderr


def test_file_options_that_cannot_be_written(tmp_path: Path) -> None:
    a_file = _file(tmp_path, "f", "")
    result = ponder("schema", "--write", a_file)  # a traceback before
    one_line_error(result, f"--write {a_file}: a file, not a folder")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    wf = _file(tmp_path, "w.yaml", "name: t\nsteps:\n"
                                   "  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}\n")
    run_id = json.loads(ponder("run", wf, "--db", db, "--json").stdout)["run_id"]
    one_line_error(ponder("export", run_id, "--db", db, "-o", str(tmp_path)),
                   f"-o {tmp_path}: cannot write it: Is a directory")
    one_line_error(ponder("export", run_id, "--db", db, "-o", str(tmp_path / "no" / "x")),
                   "cannot write it: No such file or directory")


def test_db_upgrade_of_an_unsupported_url() -> None:
    one_line_error(ponder("db", "upgrade", "--db", "bogus://x"),
                   "unsupported trace store URL bogus://x")


def test_json_that_nests_too_deeply_is_named(tmp_path: Path) -> None:
    # each was an internal RecursionError
    error = error_of(ponder("replay", "zzzz", "--db", "memory://", "--from", "a", "--set",
                            f"a.output={DEEP}", "--json"), "usage")
    assert error["message"].startswith("--set a.output: the value nests too deeply")
    deep = _file(tmp_path, "deep.json", DEEP)
    one_line_error(ponder("import", deep, "--db", f"sqlite:///{tmp_path / 'x.db'}"),
                   f"{deep}: nests too deeply")


def test_validate_json_lists_every_file_with_its_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nsteps:\n  - {id: a, kind: tool, tool: calc, args: {expr: '1'}}\n")
    result = ponder("validate", QUICKSTART, str(bad), "--json")
    error = error_of(result, "workflow")
    assert error["message"] == "2 problems found"
    assert error["location"] == error["problems"][0]["location"]
    assert error["location"].startswith(f"{bad}:3:")
    assert [f["file"] for f in error["files"]] == [QUICKSTART, str(bad)]
    assert [f["ok"] for f in error["files"]] == [True, False]
    assert [p["message"] for p in error["files"][1]["problems"]] == [
        "tool 'calc' needs argument 'expression'", "tool 'calc' has no argument 'expr'"]
    assert error["problems"] == error["files"][1]["problems"]
    assert result.stderr.count("error: tool 'calc'") == 2  # each problem once on stderr


def test_validate_json_of_valid_files() -> None:
    result = ponder("validate", QUICKSTART, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "status": "ok", "files": [{"file": QUICKSTART, "ok": True, "problems": []}]}
