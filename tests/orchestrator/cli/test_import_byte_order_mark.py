"""`ponder import` of an export saved with a byte order mark: a UTF-8 one (an editor's,
PowerShell's `Out-File -Encoding utf8`) was refused as "not JSON: Unexpected UTF-8 BOM",
and a UTF-16 one (Windows PowerShell's `ponder export RUN > FILE`) as "not UTF-8 text
(byte 0)". Both hold the same document: each is imported as the export was."""

from __future__ import annotations

import codecs
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import open_store
from tests.store.conftest import full_run


def _exported(db: str) -> str:
    async def seed() -> None:
        async with await open_store(db) as store:
            await store.append(full_run("marked", started=1_000.0))

    anyio.run(seed)
    result = CliRunner().invoke(app, ["export", "marked", "--db", db])
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("bom", "codec"), [
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
], ids=["utf-8", "utf-16-le", "utf-16-be", "utf-32-le"])
def test_an_export_with_a_byte_order_mark_is_imported(tmp_path: Path, db: str, bom: bytes,
                                                      codec: str) -> None:
    text = _exported(db)
    doc = tmp_path / "run.json"
    doc.write_bytes(bom + text.encode(codec))
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = CliRunner().invoke(app, ["import", str(doc), "--db", other])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "imported run marked"
    again = CliRunner().invoke(app, ["export", "marked", "--db", other])
    assert again.stdout == text


def test_standard_input_with_a_byte_order_mark_is_imported(tmp_path: Path) -> None:
    text = _exported(f"sqlite:///{tmp_path / 'first.db'}")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = CliRunner().invoke(app, ["import", "-", "--db", other],
                                input=codecs.BOM_UTF8 + text.encode())
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("data", "said"), [
    (codecs.BOM_UTF8 + b'{"a": "\xff"}', "not UTF-8 text (byte 10)"),
    (codecs.BOM_UTF16_LE + b"{\x00\x00", "not UTF-16 text (byte 4)"),
    (b'{"a": "\xff"}', "not UTF-8 text (byte 7)"),
])
def test_what_does_not_decode_is_named_at_its_byte(tmp_path: Path, data: bytes,
                                                   said: str) -> None:
    doc = tmp_path / "run.json"
    doc.write_bytes(data)
    result = CliRunner().invoke(app, ["import", str(doc), "--db",
                                      f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert result.stderr.replace("\n", " ").startswith(f"error: {doc}: {said}; ")
