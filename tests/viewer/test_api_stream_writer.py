"""The live stream of a run whose process dies while it is followed, on every store."""

from __future__ import annotations

import json

from viewer_server import Api
from viewer_traces import append_all, stopped_run

API = "/api/v1"


def _kinds(text: str) -> list[tuple[str, str]]:
    """(event, data) of each message of an SSE body."""
    out = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        kind = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
        if kind:
            out.append((kind, "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))))
    return out


def test_the_stream_of_a_run_whose_process_is_gone_says_interrupted_and_ends(api: Api) -> None:
    events = stopped_run("gone", writer_alive=False)
    api.call(lambda: append_all(api.store, events))
    stream = _kinds(api.client.get(f"{API}/runs/gone/stream").text)  # it ends by itself
    assert [k for k, _ in stream] == ["events", "interrupted"]
    assert json.loads(stream[1][1]) == {"last_seq": events[-1].seq}


def test_the_stream_of_a_run_whose_process_lives_says_nothing_of_it(api: Api) -> None:
    api.call(lambda: append_all(api.store, stopped_run("alive", writer_alive=True)))
    with api.client.stream("GET", f"{API}/runs/alive/stream") as response:
        seen = ""
        for chunk in response.iter_text():
            seen += chunk
            if seen.count("keep-alive") >= 12:  # heartbeats every 0.2 s: 2.4 s, past a check
                break
    assert [k for k, _ in _kinds(seen)] == ["events"]
