"""A PostgreSQL URL whose driver is not installed (Ponder installed without its
`postgres` extra) is a ConfigError naming the extra and how to install it; it was
"ModuleNotFoundError: No module named 'psycopg'" from deep in SQLAlchemy."""

from __future__ import annotations

import sys

import pytest

from orchestrator._extras import extra_missing
from orchestrator.errors import ConfigError
from orchestrator.store import open_store

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("url", "module"), [
    ("postgresql+psycopg://u@127.0.0.1:9/db", "psycopg"),
    ("postgresql://u@127.0.0.1:9/db", "psycopg"),
    ("postgresql+asyncpg://u@127.0.0.1:9/db", "asyncpg"),
])
async def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, url: str,
                                                module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    with pytest.raises(ConfigError) as info:
        await open_store(url)
    message = str(info.value)
    assert f"needs the extra `postgres` ({module} is not installed)" in message
    assert 'pip install -e ".[postgres]"' in message
    assert "\n" not in message


async def test_it_is_worded_as_a_backend_lacking_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """One wording (``extra_missing``, which takes the subject) for the store and the
    backends: the store had a copy of it."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    url = "postgresql+psycopg://u:secret@127.0.0.1:9/db"
    with pytest.raises(ConfigError) as info:
        await open_store(url)
    assert str(info.value) == extra_missing(
        "trace store URL postgresql+psycopg://u:***@127.0.0.1:9/db", "postgres", "psycopg")
    assert "secret" not in str(info.value)
    assert extra_missing("the vllm backend", "gpu", "vLLM").startswith(
        "the vllm backend needs the extra `gpu` (vLLM is not installed): pip install")
