"""Decoding a row from its payload's JSON text (as SQLite gives it) gives the very event
that decoding the payload's dict gives: same class, fields, values and fields set, with
what pydantic's parser refuses decoded from the dict instead."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from orchestrator.runtime import events as ev
from orchestrator.store import RawEvent, StoredEvent, open_store
from orchestrator.store._codec import decode_rows, dumps_payload, encode_row
from tests.store.conftest import full_run, linear_run

RUN = 'run "ü" \\ 1'


def _odd_values() -> list[StoredEvent]:
    """Events whose values JSON text holds in more than one way."""
    return [
        ev.StepSucceeded(run_id=RUN, seq=1, ts=1.1, step_id="s", attempt=1,
                         output=[math.nan, math.inf, -math.inf, 2**80, -(2**70), 1e-300, 0.1]),
        ev.StepSucceeded(run_id=RUN, seq=2, ts=1_790_000_000.123456, step_id="é ✓ 😀",
                         attempt=1, output={"😀": "tab\t nl\n \"q\" \\ \x00 \u2028"}),
        # a lone surrogate (text read with surrogateescape): stored as a JSON escape,
        # which json.loads reads and pydantic's parser refuses
        ev.StepSucceeded(run_id=RUN, seq=3, ts=2.0, step_id="s", attempt=1,
                         output={"text": "bad \udcff byte", "ok": "😀"}),
        ev.StepCancelled(run_id=RUN, seq=4, ts=3.0, step_id="s"),  # defaults left out
        RawEvent(run_id=RUN, seq=5, ts=4.0, kind="future_kind", x=[1]),  # type: ignore[call-arg]
    ]  # fmt: skip


def _rows(events: list[StoredEvent]) -> list[tuple[int, str, float, str]]:
    return [(seq, kind, ts, text) for _, seq, kind, _, ts, text in map(encode_row, events)]


def _same(got: list[StoredEvent], want: list[StoredEvent], *, fields_set: bool = True) -> None:
    assert [type(e) for e in got] == [type(e) for e in want]
    # as JSON text: NaN is not equal to itself
    assert [dumps_payload(e.model_dump(mode="json")) for e in got] == [
        dumps_payload(e.model_dump(mode="json")) for e in want
    ]
    if fields_set:  # a stored payload holds every field: set, once read back
        assert [e.model_fields_set for e in got] == [e.model_fields_set for e in want]


@pytest.mark.parametrize(
    "events",
    [full_run(RUN, unknown_kind=True), full_run(RUN, status="failed"), linear_run(RUN, 50),
     _odd_values()],
    ids=["full", "failed", "linear", "odd-values"],
)  # fmt: skip
def test_a_text_payload_decodes_as_its_dict(events: list[StoredEvent]) -> None:
    rows = _rows(events)
    from_text = decode_rows(RUN, rows)
    from_dict = decode_rows(RUN, [(s, k, t, json.loads(p)) for s, k, t, p in rows])
    _same(from_text, from_dict)
    _same(from_text, events, fields_set=False)


def test_the_envelope_wins_over_the_same_keys_in_a_payload() -> None:
    payload = json.dumps({"run_id": "other", "seq": 99, "kind": "run_finished", "ts": 0,
                          "step_id": "s", "attempt": 1, "output": 1})  # fmt: skip
    (got,) = decode_rows(RUN, [(7, "step_succeeded", 5.5, payload)])
    (want,) = decode_rows(RUN, [(7, "step_succeeded", 5.5, json.loads(payload))])
    assert got == want
    assert isinstance(got, ev.StepSucceeded)
    assert (got.run_id, got.seq, got.ts) == (RUN, 7, 5.5)


@pytest.mark.parametrize(
    "row",
    [
        (3, "step_succeeded", 1.0, '{"step_id": "s", "attempt": 1, "output": 1, "gone": 2}'),
        (3, "step_succeeded", 1.0, "{}"),
        (3, "step_succeeded", 1.0, '{"step_id": "s", "attempt": "one", "output": 1}'),
        (3, "step_succeeded", math.nan, '{"step_id": "s", "attempt": 1, "output": 1}'),
    ],
    ids=["extra-field", "empty", "wrong-type", "nan-ts"],
)
def test_a_payload_that_no_longer_validates_is_kept_raw_with_a_warning(
    row: tuple[int, str, float, str], caplog: pytest.LogCaptureFixture
) -> None:
    seq, kind, ts, text = row
    with caplog.at_level(logging.WARNING, logger="orchestrator.store._codec"):
        (got,) = decode_rows(RUN, [row])
    with caplog.at_level(logging.WARNING, logger="orchestrator.store._codec"):
        (want,) = decode_rows(RUN, [(seq, kind, ts, json.loads(text))])
    if row[3] == '{"step_id": "s", "attempt": 1, "output": 1}':  # a NaN ts validates
        assert isinstance(got, ev.StepSucceeded) and math.isnan(got.ts)
        _same([got], [want])
        return
    assert isinstance(got, RawEvent) and isinstance(want, RawEvent)
    assert got == want
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and warned[0] == warned[1]
    assert f"event 3 of run {RUN!r} kept raw" in warned[0]


@pytest.mark.anyio
async def test_every_backend_reads_back_what_it_stored(store_url: str) -> None:
    events: list[Any] = [*full_run(RUN, status=None, unknown_kind=True), *[
        e.model_copy(update={"seq": e.seq + 100}) for e in _odd_values()]]  # fmt: skip
    async with await open_store(store_url) as store:
        await store.append(events)
        _same(await store.events(RUN), events, fields_set=False)
        page = await store.events_page(RUN, after_seq=4, limit=100)
        _same(page, events[5:], fields_set=False)


def test_a_valid_payload_of_a_known_kind_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CPU saved: no json.loads (nor a dict merged and validated) for such a row
    loaded: list[str] = []
    real = json.loads

    def counting(text: Any, **kwargs: Any) -> Any:
        loaded.append(text)
        return real(text, **kwargs)

    events = full_run(RUN, unknown_kind=True)
    rows = _rows(events)
    monkeypatch.setattr(json, "loads", counting)
    _same(decode_rows(RUN, rows), events, fields_set=False)
    assert loaded == [p for _, k, _, p in rows if k == "future_kind"]
