"""`ponder import` of a file of several exports, one after another (`ponder export A;
ponder export B` into one file or pipe: each export is one line) was refused as "not
JSON: Extra data" at the second. Each document is imported, all or none: every one is
checked before any is stored, and a run in two documents, or stored already, leaves the
store as it was.

A JSON file that is no trace at all (a workflow's JSON, a `ponder show --json`) was
three lines of "invalid trace document" naming neither the file nor what it is; it is
one line naming the file, and a trace's problems name the file (and the document's
line) too."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import open_store
from tests.store.conftest import full_run


def _exports(db: str, *run_ids: str) -> list[str]:
    async def seed() -> None:
        async with await open_store(db) as store:
            for i, rid in enumerate(run_ids):
                await store.append(full_run(rid, started=1_000.0 + i))

    anyio.run(seed)
    texts = []
    for rid in run_ids:
        result = CliRunner().invoke(app, ["export", rid, "--db", db])
        assert result.exit_code == 0, result.stderr
        texts.append(result.stdout)
    return texts


def _stored(db: str) -> list[str]:
    result = CliRunner().invoke(app, ["runs", "--json", "--db", db])
    assert result.exit_code == 0, result.stderr
    return sorted(r["id"] for r in json.loads(result.stdout))


def _import(source: str | Path, db: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["import", str(source), "--db", db], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _empty_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'other.db'}"

    async def create() -> None:
        await (await open_store(url)).close()

    anyio.run(create)
    return url


def test_a_file_of_several_exports_imports_each_run(tmp_path: Path, db: str) -> None:
    texts = _exports(db, "first", "second")
    doc = tmp_path / "runs.json"
    doc.write_text("".join(texts))
    other = _empty_store(tmp_path)
    code, out, err = _import(doc, other)
    assert code == 0, err
    assert out == "imported run first\nimported run second\n"
    assert _stored(other) == ["first", "second"]
    for rid, text in zip(["first", "second"], texts, strict=True):
        assert CliRunner().invoke(app, ["export", rid, "--db", other]).stdout == text


def test_several_exports_on_standard_input(tmp_path: Path) -> None:
    texts = _exports(f"sqlite:///{tmp_path / 'a.db'}", "first", "second")
    other = _empty_store(tmp_path)
    code, _, err = _import("-", other, stdin="\n".join(texts))
    assert code == 0, err
    assert _stored(other) == ["first", "second"]


def test_a_bad_document_imports_none_and_is_named_at_its_line(tmp_path: Path) -> None:
    texts = _exports(f"sqlite:///{tmp_path / 'a.db'}", "first")
    doc = tmp_path / "runs.json"
    doc.write_text(texts[0] + '{"format": "ponder.trace", "version": 1, "events": []}\n')
    other = _empty_store(tmp_path)
    code, _, err = _import(doc, other)
    assert code == 1
    assert err == (f"error: {doc}:2: invalid trace document:\n"
                   "  events: expected a non-empty list of events\n")
    assert _stored(other) == []


def test_what_follows_a_document_and_is_not_json_is_named(tmp_path: Path) -> None:
    texts = _exports(f"sqlite:///{tmp_path / 'a.db'}", "first")
    doc = tmp_path / "runs.json"
    doc.write_text(texts[0] + "oops\n")
    code, _, err = _import(doc, _empty_store(tmp_path))
    assert code == 1
    assert err == f"error: {doc}:2:1: not JSON: Expecting value\n"


def test_a_run_in_two_documents_imports_none(tmp_path: Path) -> None:
    texts = _exports(f"sqlite:///{tmp_path / 'a.db'}", "first", "second")
    doc = tmp_path / "runs.json"
    doc.write_text(texts[0] + texts[1] + texts[0])
    other = _empty_store(tmp_path)
    code, _, err = _import(doc, other)
    assert code == 1
    assert err == (f"error: {doc}: run first is in the documents of lines 1 and 3; nothing "
                   "was imported. Import each run once\n")
    assert _stored(other) == []


def test_a_run_stored_already_imports_none(tmp_path: Path, db: str) -> None:
    texts = _exports(db, "first", "second")
    doc = tmp_path / "runs.json"
    doc.write_text(texts[0] + texts[1])
    lone = tmp_path / "second.json"
    lone.write_text(texts[1])
    other = _empty_store(tmp_path)
    assert _import(lone, other)[0] == 0
    code, _, err = _import(doc, other)
    assert code == 1
    assert err.startswith(f"error: {doc}: run second is in the trace store already")
    assert "nothing was imported" in err
    assert _stored(other) == ["second"]


def test_json_that_is_no_trace_is_one_line_naming_the_file(tmp_path: Path) -> None:
    other = _empty_store(tmp_path)
    cases = {
        '{"name": "w", "steps": []}':
            'it has no "format"; an export\'s is "ponder.trace"',
        '{"format": "other"}': 'its "format" is \'other\'; an export\'s is "ponder.trace"',
        "[]": "it is a JSON array; an export is an object, one per run",
    }
    for text, why in cases.items():
        doc = tmp_path / "x.json"
        doc.write_text(text)
        code, _, err = _import(doc, other)
        assert code == 1
        assert err == f"error: {doc}: not a trace written by `ponder export` ({why})\n"
    result = CliRunner().invoke(app, ["import", "-", "--db", other], input="{}")
    assert result.stderr.startswith("error: standard input: not a trace written by ")


def test_an_invalid_trace_names_the_file(tmp_path: Path) -> None:
    doc = tmp_path / "x.json"
    doc.write_text('{"format": "ponder.trace", "version": 1, "events": [{"seq": 0}]}')
    code, _, err = _import(doc, _empty_store(tmp_path))
    assert code == 1
    assert err.startswith(f"error: {doc}: invalid trace document:\n  events[0]")
