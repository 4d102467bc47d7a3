"""Every backend reads a stored payload as its JSON text and validates a known kind's
event from it in one pass (``decode_text``): PostgreSQL's ``json`` column is read as
text too, instead of the dict its driver would parse for ``decode`` to validate again."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.store import RawEvent, StoredEvent, _codec, open_store
from tests.store.conftest import full_run, linear_run

RUN = "payload-text"


def _counting_decode(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seqs of the rows decoded from a dict (the path a text payload avoids)."""
    seen: list[int] = []
    real = _codec.decode

    def counting(run_id: str, seq: int, kind: str, ts: float, payload: Any) -> StoredEvent:
        seen.append(seq)
        return real(run_id, seq, kind, ts, payload)

    monkeypatch.setattr(_codec, "decode", counting)
    return seen


@pytest.mark.anyio
async def test_a_stored_payload_of_a_known_kind_is_validated_from_its_text(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [*full_run(RUN, unknown_kind=True), *linear_run("other", 5)]
    raw = [e.seq for e in events if isinstance(e, RawEvent) and e.run_id == RUN]
    async with await open_store(store_url) as store:
        await store.append(events)
        seen = _counting_decode(monkeypatch)
        got = await store.events(RUN)
        assert got == [e for e in events if e.run_id == RUN]
        assert seen == raw  # only the unknown kind went through a dict
        seen.clear()
        page = await store.events_page(RUN, after_seq=1, limit=3)
        assert page == [e for e in events if e.run_id == RUN][2:5]
        assert seen == [s for s in raw if 2 <= s <= 4]
        seen.clear()
        kinds = {"step_started", "run_finished"}
        assert await store.events(RUN, kinds=kinds) == [
            e for e in events if e.run_id == RUN and e.kind in kinds
        ]
        assert seen == []
