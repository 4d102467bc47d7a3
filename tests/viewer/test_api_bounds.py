"""Every integer a query parameter of the viewer's API takes, at any size: an answer or
a 422 naming the parameter, never a 500 (the store's driver overflowing) or a 503."""

from __future__ import annotations

from viewer_server import Api
from viewer_traces import append_all, research_trace

API = "/api/v1"
HUGE = ("2147483648", str(2**63), str(2**70), "9" * 400)


def test_integer_parameters_beyond_a_database_are_answered(api: Api) -> None:
    events = research_trace("r").events
    api.call(lambda: append_all(api.store, events))
    for value in HUGE:  # the last keyframe before it: the first (a short run has no other)
        tip = api.client.get(f"{API}/runs/r/keyframe", params={"index": value})
        assert tip.status_code == 200 and tip.json()["keyframe"]["index"] == -1, value
        both = api.client.get(f"{API}/runs/r/keyframe", params={"index": 3, "events_to": value})
        assert both.status_code == 200, value
        assert [e["seq"] for e in both.json()["events"]] == list(range(len(events))), value
        step = api.client.get(f"{API}/runs/r/events", params={"step_id": "question",
                                                               "after_seq": value})
        assert step.status_code == 200 and step.json()["events"] == [], value
        stream = api.client.get(f"{API}/runs/r/stream", params={"after_seq": value})
        assert stream.status_code == 200 and "event: end" in stream.text, value
    for path, params, name in (
        ("runs", {"limit": HUGE[-1]}, "limit"),
        ("runs", {"offset": HUGE[1]}, "offset"),
        ("runs/r/events", {"limit": HUGE[2]}, "limit"),
        ("runs/r/keyframe", {"index": "-" + HUGE[2]}, "index"),
        ("runs/r/keyframe", {"events_to": "-" + HUGE[2]}, "events_to"),
    ):
        response = api.client.get(f"{API}/{path}", params=params)
        assert response.status_code == 422, (path, params)
        assert response.json()["detail"][0]["loc"] == ["query", name]
