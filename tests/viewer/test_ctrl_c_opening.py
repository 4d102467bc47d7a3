"""Ctrl-C while ``ponder view`` is still opening the store, before the server handles
it, exits 130 as every other Ctrl-C of Ponder does: click (which typer used before it
carried its own copy) made the KeyboardInterrupt "Aborted!" (``ponder``: "aborted") and
status 1."""

from __future__ import annotations

from typing import Any

import pytest

import orchestrator.store
from orchestrator.viewer.cli import view


def test_ctrl_c_while_the_store_opens_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(orchestrator.store, "open_store", interrupted)
    with pytest.raises(SystemExit) as stopped:
        view(db="memory://", host="127.0.0.1", port=0, token=None)
    assert stopped.value.code == 130
