"""What a run's steps put in its events (a tool's or a model's output) is served as it
is stored, whatever text it holds: never a 500."""

from __future__ import annotations

import json

from viewer_server import Api
from viewer_traces import append_all

from orchestrator.runtime import events as ev

API = "/api/v1"
LONE = "a\udc80b\ud800"  # lone surrogates: text UTF-8 cannot encode


def _run(run_id: str) -> list[ev.Event]:
    t = 1000.0
    return [
        ev.RunStarted(run_id=run_id, seq=0, ts=t, workflow="w", inputs={"q": "x"}),
        ev.StepStarted(run_id=run_id, seq=1, ts=t, step_id="s", step_kind="tool", attempt=1,
                       input={"x": LONE}),
        ev.StepSucceeded(run_id=run_id, seq=2, ts=t + 1, step_id="s", attempt=1,
                         output={"text": LONE, "more": [LONE]}, raw=LONE),
        ev.RunFinished(run_id=run_id, seq=3, ts=t + 2, status="succeeded", output=LONE),
    ]


def _sse_events(text: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if "event: events" in lines:
            data = next(line for line in lines if line.startswith("data: "))
            out.extend(json.loads(data.removeprefix("data: ")))
    return out


def test_lone_surrogates_in_outputs_are_served_escaped(api: Api) -> None:
    # pydantic's JSON encoder refused the events and the run: 500 on each backend
    # one event a batch: a batch with a lone surrogate where the store keeps a column
    # (its run row) is stored with every lone surrogate of it replaced
    for event in _run("lone"):
        api.call(lambda event=event: append_all(api.store, [event]))
    for path in ("/runs/lone", "/runs/lone?steps=false", "/runs/lone/events",
                 "/runs/lone/events?step_id=s", "/runs/lone/keyframe?index=0&events_to=3",
                 "/runs/lone/stream"):
        response = api.client.get(API + path)
        assert response.status_code == 200, (path, response.text[:300])
    events = api.client.get(f"{API}/runs/lone/events").json()["events"]
    stored = [e.model_dump(mode="json") for e in api.call(lambda: api.store.events("lone"))]
    assert events == stored  # the same text, each lone surrogate as JSON's escape of it
    assert stored[2]["raw"] == LONE
    assert _sse_events(api.client.get(f"{API}/runs/lone/stream").text) == stored
    run = api.client.get(f"{API}/runs/lone").json()["run"]
    assert run["output"] == stored[-1]["output"] and run["steps"][0]["raw"] == stored[2]["raw"]
