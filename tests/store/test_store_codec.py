"""Decoding stored rows: a page of events is decoded without garbage collections."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.store._codec import decode_rows, encode_row, paused_gc
from tests.store.conftest import linear_run


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations of the garbage collections run while the test runs."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)


def test_a_page_of_rows_is_decoded_without_a_collection(collections: list[int]) -> None:
    # Each collection of a long read scans ever more of what it keeps, for nothing: it
    # was half the CPU of the viewer's first read of a run of 200,000 events.
    events = linear_run("r1", 5000)
    # the payloads as dicts (a driver's), not the text decode_rows takes on another path
    rows = [(seq, kind, ts, json.loads(text)) for _, seq, kind, _, ts, text in map(encode_row, events)]
    gc.collect()
    collections.clear()
    decoded = decode_rows("r1", rows)
    # at most the one that the first allocation after it starts (without the pause:
    # one per 700 objects made)
    assert collections in ([], [0])
    assert decoded == events
    assert gc.isenabled()


def test_paused_gc_restores_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # nested: the outer block turns it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()
    gc.disable()  # a program that runs without it keeps it off
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
