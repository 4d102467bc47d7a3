"""Decoding stored rows: a page of events is decoded without garbage collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.store._codec import decode_rows, encode, paused_gc
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
    rows = [(enc.seq, enc.kind, enc.ts, enc.payload) for enc in map(encode, events)]
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
