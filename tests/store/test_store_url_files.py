"""The SQLite file a store URL names: none (``sqlite:///``), a directory, one that must
already exist for a command that reads runs (:func:`require_stored`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, StoreUnavailable
from orchestrator.store import SqlStore, open_store
from orchestrator.store._open import read_only_url, require_stored
from orchestrator.store._sql import normalize_url


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite+pysqlite:///",
                                 "sqlite+aiosqlite:///?synchronous=FULL"])
def test_a_sqlite_url_naming_no_file_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"names no SQLite file: give one \(sqlite:///PATH\)"):
        normalize_url(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlalchemys_own_in_memory_urls_are_kept(url: str) -> None:
    assert normalize_url(url).database == ":memory:"


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["url", "path"])
async def test_a_directory_is_refused_as_one(tmp_path: Path, form: str) -> None:
    url = f"sqlite:///{tmp_path}" if form == "url" else str(tmp_path)
    with pytest.raises(StoreUnavailable) as info:
        await open_store(url)
    assert str(info.value) == (f"SQLite file {tmp_path} is a directory; name a file in it "
                               f"(e.g. {tmp_path / 'ponder.db'})")


def test_a_read_only_directory_gets_no_read_only_url(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        assert read_only_url(str(tmp_path)) is None  # opening it says it is a directory
    finally:
        tmp_path.chmod(0o700)


def test_require_stored_refuses_a_named_file_that_does_not_exist(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PONDER_DB_URL", raising=False)
    missing = tmp_path / "typo.db"
    with pytest.raises(StoreUnavailable, match=f"no trace store at {missing}; .*--db"):
        require_stored(str(missing))
    monkeypatch.setenv("PONDER_DB_URL", f"sqlite:///{missing}")
    with pytest.raises(StoreUnavailable, match=r"\$PONDER_DB_URL"):
        require_stored(None)
    assert not missing.exists()


@pytest.mark.anyio
async def test_require_stored_accepts_a_store_that_exists_and_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PONDER_DB_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default file: missing, allowed
    require_stored(None)
    require_stored("memory://")
    require_stored("sqlite://")
    db = tmp_path / "trace.db"
    async with await open_store(str(db)):
        pass
    require_stored(str(db))
    require_stored(f"sqlite:///{db}")
    assert SqlStore(str(db)).path == db
