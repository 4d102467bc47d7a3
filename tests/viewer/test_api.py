"""The viewer's JSON API, SSE stream and pages over HTTP (no browser), on every store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from viewer_server import Api
from viewer_traces import (
    DEMO_STEPS,
    RESEARCH_REPLANNED,
    XSS,
    CountingReader,
    FlakyStore,
    TraceBuilder,
    append_all,
    big_trace,
    demo_workflow,
    failing_workflow,
    many_runs,
    research_trace,
    run_into,
    stopped_run,
)

from orchestrator.runtime import events as ev
from orchestrator.store import MemoryStore, fold_events
from orchestrator.viewer import EVENTS_PAGE_MAX, create_app

API = "/api/v1"


def _sse(text: str) -> list[tuple[str, str]]:
    """(event, data) of each message of an SSE body."""
    out = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        kind = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
        data = "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))
        if kind:
            out.append((kind, data))
    return out


# -- runs ------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_their_headline(api: Api) -> None:
    first = api.call(lambda: run_into(api.store, demo_workflow()))
    second = api.call(lambda: run_into(api.store, failing_workflow()))
    page = api.client.get(f"{API}/runs").json()
    assert [r["id"] for r in page["runs"]] == [second, first]
    assert page["has_more"] is False
    demo = page["runs"][1]
    assert demo["workflow"] == "demo" and demo["status"] == "succeeded"
    assert demo["n_steps"] == len(DEMO_STEPS)
    assert demo["duration_s"] > 0 and demo["prompt_tokens"] == 0
    assert page["runs"][0]["status"] == "failed"


def test_runs_filter_by_status_and_workflow_and_page(api: Api) -> None:
    api.call(lambda: append_all(api.store, many_runs(120)))
    page = api.client.get(f"{API}/runs", params={"limit": 50}).json()
    assert [r["id"] for r in page["runs"]][:2] == ["run-0119", "run-0118"]
    assert page["has_more"] is True
    last = api.client.get(f"{API}/runs", params={"limit": 50, "offset": 100}).json()
    assert len(last["runs"]) == 20 and last["has_more"] is False
    assert last["runs"][-1]["id"] == "run-0000"
    failed = api.client.get(f"{API}/runs", params={"status": "failed", "limit": 500}).json()
    assert {r["status"] for r in failed["runs"]} == {"failed"} and len(failed["runs"]) == 24
    wf1 = api.client.get(f"{API}/runs", params={"workflow": "wf1", "limit": 500}).json()
    assert {r["workflow"] for r in wf1["runs"]} == {"wf1"} and len(wf1["runs"]) == 40


def test_a_running_run_whose_process_is_gone_is_marked_interrupted(api: Api) -> None:
    api.call(lambda: append_all(api.store, stopped_run("gone", writer_alive=False)
                                + stopped_run("alive", writer_alive=True)))
    page = api.client.get(f"{API}/runs").json()
    assert page["interrupted"] == ["gone"]
    assert {r["id"]: r["status"] for r in page["runs"]} == {"gone": "running",
                                                            "alive": "running"}
    for run_id, interrupted in (("gone", True), ("alive", False)):
        for steps in ("true", "false"):
            detail = api.client.get(f"{API}/runs/{run_id}?steps={steps}").json()
            assert (detail["interrupted"], detail["finished"]) == (interrupted, False)
            assert detail["run"]["status"] == "running"  # computed, never stored
            assert detail["resume"] == ("gone" if interrupted else None)


def test_an_interrupted_sub_workflows_run_names_the_run_whose_resume_continues_it(
        api: Api) -> None:
    child = {"parent_run_id": "gone", "parent_step_id": "b", "parent_attempt": 1}
    api.call(lambda: append_all(api.store, stopped_run("gone", writer_alive=False)
                                + stopped_run("gone-child", writer_alive=False, **child)
                                + stopped_run("gone-fork", writer_alive=False,
                                              parent_run_id="gone", parent_step_id="b")))
    page = api.client.get(f"{API}/runs").json()
    assert sorted(page["interrupted"]) == ["gone", "gone-child", "gone-fork"]
    assert page["resume"] == {"gone-child": "gone"}  # a fork is resumed on its own
    for run_id, resume in (("gone-child", "gone"), ("gone-fork", "gone-fork")):
        assert api.client.get(f"{API}/runs/{run_id}").json()["resume"] == resume


def test_bad_paging_parameters_are_rejected(api: Api) -> None:
    assert api.client.get(f"{API}/runs", params={"limit": 0}).status_code == 422
    assert api.client.get(f"{API}/runs", params={"limit": 10_000}).status_code == 422
    assert api.client.get(f"{API}/runs", params={"offset": -1}).status_code == 422
    assert api.client.get(f"{API}/runs", params={"status": "weird"}).status_code == 422


def test_offsets_beyond_what_a_database_counts_are_rejected(api: Api) -> None:
    # SQLite failed with an internal OverflowError (500), PostgreSQL with 'bigint out of
    # range' (503, as if the store were down)
    api.call(lambda: append_all(api.store, many_runs(3)))
    assert len(api.client.get(f"{API}/runs", params={"offset": 2**31 - 1}).json()["runs"]) == 0
    for offset in (2**31, 2**63, 10**30):
        response = api.client.get(f"{API}/runs", params={"offset": offset})
        assert response.status_code == 422, offset
        assert response.json()["detail"][0]["loc"] == ["query", "offset"]


def test_a_nul_in_a_run_id_or_a_filter_is_not_a_store_failure(api: Api) -> None:
    # PostgreSQL's text holds no NUL: its driver refused the query, and the viewer said
    # 503 'cannot read events', as if the store were down
    api.call(lambda: append_all(api.store, research_trace("a").events))
    for path in ("", "/events", "/stream"):
        response = api.client.get(f"{API}/runs/a%00b{path}")
        assert response.status_code == 404, path
        assert "no run 'a\\x00b'" in response.json()["detail"]
    assert api.client.get("/runs/a%00b").status_code == 404
    for name in ("workflow", "parent_run_id"):
        response = api.client.get(f"{API}/runs", params={name: "a\x00b"})
        assert response.status_code == 422, name
        assert response.json()["detail"][0]["loc"] == ["query", name]


# -- one run ---------------------------------------------------------------------------


def test_a_run_carries_its_graph_with_the_dependencies_of_declared_steps(api: Api) -> None:
    run_id = api.call(lambda: run_into(api.store, demo_workflow()))
    body = api.client.get(f"{API}/runs/{run_id}").json()
    assert body["run"]["status"] == "succeeded"
    graph = {g["id"]: g for g in body["graph"]}
    assert set(graph) == DEMO_STEPS
    assert graph["c"]["deps"] == ["a"] and graph["c"]["declared"]
    assert set(graph["d"]["deps"]) == {"c", "nap"}
    assert graph["m[1]"]["parent"] == "m" and not graph["m[1]"]["declared"]
    assert graph["m[1]"]["added_by"] == "m" and graph["m[1]"]["patch_reason"] == "map"
    steps = {s["id"]: s for s in body["run"]["steps"]}
    assert steps["c"]["output"] == 9 and steps["c"]["deps"] == ["a"]
    assert steps["c"]["input"] == {"tool": "calc", "args": {"expression": "3 * 3"}}
    light = api.client.get(f"{API}/runs/{run_id}", params={"steps": "false"}).json()
    assert light["run"]["steps"] == [] and len(light["graph"]) == len(DEMO_STEPS)


def test_replanned_and_nested_steps_are_marked(api: Api) -> None:
    api.call(lambda: append_all(api.store, research_trace().events))
    graph = {g["id"]: g for g in api.client.get(f"{API}/runs/research-1").json()["graph"]}
    assert {i for i, g in graph.items() if g["replanned"]} == RESEARCH_REPLANNED
    assert graph["plan.4.a"]["parent"] == "plan.4" and graph["plan.4"]["parent"] == "plan"
    assert graph["plan.3"]["deps"] == ["plan.1", "plan.2"]
    assert graph["plan"]["deps"] == ["question"]


def test_a_run_without_its_steps_has_the_same_headline(api: Api) -> None:
    b = research_trace("headline")

    def check() -> dict[str, Any]:
        full = api.client.get(f"{API}/runs/headline").json()
        light = api.client.get(f"{API}/runs/headline", params={"steps": "false"}).json()
        assert light["run"] == {**full["run"], "steps": []}
        assert light["graph"] == full["graph"]
        return full["run"]  # type: ignore[no-any-return]

    api.call(lambda: append_all(api.store, b.events[:12]))
    running = check()
    assert running["status"] == "running" and running["prompt_tokens"] == 42
    api.call(lambda: append_all(api.store, b.events[12:]))
    finished = check()
    assert finished["status"] == "succeeded" and finished["prompt_tokens"] == 902


def test_a_resumed_run_without_its_steps_has_the_same_token_counts(api: Api) -> None:
    # the headline summed the tokens of every event while the run went on, the total of
    # its earlier run_finished included: counted twice after a resume
    b = research_trace("resumed")
    resumed = ev.RunStarted(run_id="resumed", seq=len(b.events), ts=b.events[-1].ts + 1,
                            workflow="research", inputs={}, resumed=True)
    api.call(lambda: append_all(api.store, [*b.events, resumed]))
    full = api.client.get(f"{API}/runs/resumed").json()["run"]
    light = api.client.get(f"{API}/runs/resumed", params={"steps": "false"}).json()["run"]
    assert full["status"] == "running" and full["prompt_tokens"] == 902
    assert light == {**full, "steps": []}


def test_child_runs_are_listed_with_their_parent(api: Api) -> None:
    parent = TraceBuilder("parent-run", "outer").start([{"id": "call", "workflow": "inner.yaml"}])
    parent.run_step("call", "workflow", 0.0, 1.0, output={})
    parent.finish(1.1)
    child = TraceBuilder("child-run", "inner").start(
        [{"id": "x", "tool": "calc", "args": {}}], parent_run_id="parent-run",
        parent_step_id="call", parent_attempt=1)
    child.finish(0.9)
    # a fork of the parent from its step `call`: no step started it, a user did
    fork = TraceBuilder("fork-run", "outer", t0=parent.t0 + 5).start(
        [{"id": "call", "workflow": "inner.yaml"}], parent_run_id="parent-run",
        parent_step_id="call")
    fork.finish(0.5)
    api.call(lambda: append_all(api.store, parent.events + child.events + fork.events))
    body = api.client.get(f"{API}/runs/parent-run").json()
    assert [(c["id"], c["parent_step_id"], c["parent_attempt"]) for c in body["children"]] == [
        ("fork-run", "call", None), ("child-run", "call", 1)]
    top = api.client.get(f"{API}/runs", params={"top_level": "true"}).json()
    assert [r["id"] for r in top["runs"]] == ["fork-run", "parent-run"]


ODD_RUN_IDS = ["a/b", "nested/run/id", XSS, "sp ace", "\u00fcn\u00ef\u00e7\u00f8d\u00e9", "x?y#z", "50%"]


def test_any_run_id_reaches_every_route(api: Api) -> None:
    # The SDK and `ponder import` accept any run id: one with "/" must not 404.
    for run_id in ODD_RUN_IDS:
        api.call(lambda run_id=run_id: append_all(api.store, research_trace(run_id).events))
    for run_id in ODD_RUN_IDS:
        path = quote(run_id, safe="")
        assert api.client.get(f"/runs/{path}").status_code == 200, run_id
        run = api.client.get(f"{API}/runs/{path}")
        assert run.status_code == 200, run_id
        assert run.json()["run"]["id"] == run_id
        events = api.client.get(f"{API}/runs/{path}/events")
        assert events.status_code == 200 and events.json()["run_id"] == run_id, run_id
        stream = api.client.get(f"{API}/runs/{path}/stream")
        assert stream.status_code == 200, run_id
        assert [m[0] for m in _sse(stream.text)] == ["events", "end"], run_id
    assert api.client.get(f"{API}/runs/{quote('a/nope', safe='')}").status_code == 404


def test_run_ids_ending_like_a_route_are_told_apart_when_encoded(api: Api) -> None:
    # "a/events" is a run of its own, not the events of "a": encoded whole, it is one id.
    ids = {"a": 3, "a/events": 4, "a/stream": 5, "a/events/events": 6}
    for run_id, n in ids.items():
        api.call(partial(append_all, api.store, big_trace(run_id, n).events))
    for run_id, n in ids.items():
        path = quote(run_id, safe="")
        run = api.client.get(f"{API}/runs/{path}", params={"steps": "false"})
        assert run.status_code == 200, run_id
        assert run.json()["run"]["id"] == run_id and run.json()["last_seq"] == 3 * n + 4
        events = api.client.get(f"{API}/runs/{path}/events").json()
        assert events["run_id"] == run_id and len(events["events"]) == 3 * n + 5, run_id
        stream = _sse(api.client.get(f"{API}/runs/{path}/stream").text)
        assert [m[0] for m in stream] == ["events", "end"], run_id
        assert {e["run_id"] for e in json.loads(stream[0][1])} == {run_id}
        assert len(json.loads(stream[0][1])) == 3 * n + 5
    # a bare "/" still works where the id does not end like a route
    assert api.client.get(f"{API}/runs/a/events/events").json()["run_id"] == "a/events"
    assert api.client.get(f"{API}/runs/a/events").json()["run_id"] == "a"
    assert api.client.get(f"{API}/runs/{quote('a/nope', safe='')}/events").status_code == 404


def test_every_child_run_is_listed_however_many(api: Api) -> None:
    parent = TraceBuilder("parent-run", "outer").start([{"id": "each", "workflow": "inner.yaml"}])
    parent.finish(1.0)
    events = list(parent.events)
    for i in range(1203):  # a map over a sub-workflow: a child run per item
        child = TraceBuilder(f"child-{i:04}", "inner", t0=parent.t0 + i).start(
            [], parent_run_id="parent-run", parent_step_id="each")
        events += child.events
    api.call(lambda: append_all(api.store, events))
    children = api.client.get(f"{API}/runs/parent-run", params={"steps": "false"}).json()["children"]
    assert len(children) == 1203
    assert len({c["id"] for c in children}) == 1203


def test_unknown_run_is_404_everywhere(api: Api) -> None:
    for path in ("", "/events", "/stream"):
        response = api.client.get(f"{API}/runs/nope{path}")
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"]


# -- events ----------------------------------------------------------------------------


def test_events_come_in_order_and_can_be_tailed(api: Api) -> None:
    run_id = api.call(lambda: run_into(api.store, demo_workflow()))
    body = api.client.get(f"{API}/runs/{run_id}/events").json()
    seqs = [e["seq"] for e in body["events"]]
    assert seqs == list(range(len(seqs))) and body["last_seq"] == seqs[-1]
    assert body["finished"] is True and body["run_id"] == run_id
    kinds = [e["kind"] for e in body["events"]]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    tail = api.client.get(f"{API}/runs/{run_id}/events", params={"after_seq": 5, "limit": 3}).json()
    assert [e["seq"] for e in tail["events"]] == [6, 7, 8] and tail["last_seq"] == 8
    none = api.client.get(f"{API}/runs/{run_id}/events", params={"after_seq": seqs[-1]}).json()
    assert none["events"] == [] and none["last_seq"] is None


def test_events_of_a_growing_run_are_read_again(api: Api) -> None:
    b = research_trace("growing")
    api.call(lambda: append_all(api.store, b.events[:10]))
    assert len(api.client.get(f"{API}/runs/growing/events").json()["events"]) == 10
    assert api.client.get(f"{API}/runs/growing").json()["finished"] is False
    api.call(lambda: append_all(api.store, b.events[10:]))
    body = api.client.get(f"{API}/runs/growing/events").json()
    assert len(body["events"]) == len(b.events) and body["finished"] is True
    assert api.client.get(f"{API}/runs/growing").json()["run"]["status"] == "succeeded"


def test_events_come_in_pages_of_at_most_five_thousand(make_client: Callable[..., Api]) -> None:
    api = make_client()
    events = big_trace("paged", 1800).events  # 5405 events
    assert len(events) > EVENTS_PAGE_MAX == 5000
    api.call(lambda: append_all(api.store, events))
    url = f"{API}/runs/paged/events"
    first = api.client.get(url).json()  # no limit: the most
    assert [e["seq"] for e in first["events"]] == list(range(5000))
    assert first["last_seq"] == 4999 and first["has_more"] is True
    assert first["finished"] is True  # the run is: its events are not all here yet
    rest = api.client.get(url, params={"after_seq": first["last_seq"]}).json()
    assert [e["seq"] for e in rest["events"]] == list(range(5000, len(events)))
    assert rest["has_more"] is False and rest["last_seq"] == len(events) - 1
    assert api.client.get(url, params={"limit": 5000}).json()["has_more"] is True
    small = api.client.get(url, params={"after_seq": 5390, "limit": 10}).json()
    assert (small["last_seq"], small["has_more"]) == (5400, True)
    for bad in (0, 5001, 100_000):
        assert api.client.get(url, params={"limit": bad}).status_code == 422, bad
    doc = api.client.get(f"{API}/openapi.json").json()
    params = doc["paths"][f"{API}/runs/{{run_id}}/events"]["get"]["parameters"]
    limit = next(p for p in params if p["name"] == "limit")["schema"]
    assert (limit["maximum"], limit["default"]) == (5000, 5000)
    assert "has_more" in doc["components"]["schemas"]["EventsPage"]["required"]


def test_events_beyond_either_end_of_a_run_are_an_empty_page_or_the_first(api: Api) -> None:
    events = research_trace("r").events
    api.call(lambda: append_all(api.store, events))
    url = f"{API}/runs/r/events"
    for after in (events[-1].seq, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**20):
        body = api.client.get(url, params={"after_seq": after}).json()
        assert (body["events"], body["last_seq"], body["has_more"]) == ([], None, False), after
    for after in (-1, -(2**63), -(10**20)):
        body = api.client.get(url, params={"after_seq": after, "limit": 2}).json()
        assert [e["seq"] for e in body["events"]] == [0, 1] and body["has_more"], after
    for bad in ("abc", "1.5", "", "9" * 5000):
        assert api.client.get(url, params={"after_seq": bad}).status_code == 422, bad
    stream = api.client.get(f"{API}/runs/r/stream", params={"after_seq": 10**20})
    assert [m[0] for m in _sse(stream.text)] == ["end"]


def test_a_last_event_id_that_is_not_a_seq_is_ignored(api: Api) -> None:
    # int() refused what str.isdigit() let through ('²', 5,000 digits): a 500
    api.call(lambda: append_all(api.store, research_trace("r").events))
    for header in ("\u00b2", "1" * 5000, "abc", "", "1e3"):
        response = api.client.get(f"{API}/runs/r/stream",
                                  headers={"Last-Event-ID": header.encode("latin-1")})
        assert response.status_code == 200, header[:8]
        events = [e for kind, data in _sse(response.text) if kind == "events"
                  for e in json.loads(data)]
        assert len(events) == len(research_trace().events), header[:8]


def test_serving_a_large_run_never_reads_it_whole(monkeypatch: Any) -> None:
    from fastapi.testclient import TestClient

    from orchestrator.viewer import _cache

    monkeypatch.setattr(_cache, "READ_PAGE", 1000)
    store = MemoryStore()
    reader = CountingReader(store)
    events = big_trace("big", 2000).events  # 6005 events
    with TestClient(create_app(reader)) as client:
        client.portal.call(lambda: append_all(store, events))
        assert client.get("/runs/big").status_code == 200
        assert reader.calls == []  # the page only asks whether the run is stored
        first = client.get(f"{API}/runs/big/events").json()
        rest = client.get(f"{API}/runs/big/events", params={"after_seq": first["last_seq"]})
        assert len(first["events"]) + len(rest.json()["events"]) == len(events)
        assert reader.pages == [5001, 5001]  # one page each, and whether more follow
        reader.pages.clear()
        run = client.get(f"{API}/runs/big", params={"steps": "false"}).json()
        assert run["run"]["n_events"] == len(events) and len(run["graph"]) == 2001
        assert set(reader.pages) == {1000} and len(reader.pages) == 7
        reader.pages.clear()
        stream = _sse(client.get(f"{API}/runs/big/stream").text)
        assert [len(json.loads(d)) for k, d in stream if k == "events"] == [1000] * 6 + [5]
        assert set(reader.pages) == {1000}
    assert reader.whole == []


def test_stream_sends_the_events_then_ends_for_a_finished_run(api: Api) -> None:
    events = research_trace().events
    last = events[-1].seq
    api.call(lambda: append_all(api.store, events))
    response = api.client.get(f"{API}/runs/research-1/stream", params={"after_seq": 30})
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = _sse(response.text)
    assert [m[0] for m in messages] == ["events", "end"]
    assert [e["seq"] for e in json.loads(messages[0][1])] == list(range(31, last + 1))
    resumed = api.client.get(f"{API}/runs/research-1/stream",
                             headers={"Last-Event-ID": str(last - 1)})
    assert [e["seq"] for e in json.loads(_sse(resumed.text)[0][1])] == [last]


def test_stream_sends_a_large_run_in_messages_of_a_thousand_events(api: Api) -> None:
    events = big_trace("big", 800).events  # 2405 events
    api.call(lambda: append_all(api.store, events))
    response = api.client.get(f"{API}/runs/big/stream")
    blocks = [b for b in response.text.split("\n\n") if "event: events" in b]
    assert [b.splitlines()[0] for b in blocks] == ["id: 999", "id: 1999", f"id: {len(events) - 1}"]
    sent = [json.loads(data) for kind, data in _sse(response.text) if kind == "events"]
    assert [len(batch) for batch in sent] == [1000, 1000, len(events) - 2000]
    assert [e["seq"] for batch in sent for e in batch] == list(range(len(events)))
    tail = api.client.get(f"{API}/runs/big/stream", headers={"Last-Event-ID": "1999"})
    assert [len(json.loads(d)) for k, d in _sse(tail.text) if k == "events"] == [len(events) - 2000]


def test_stream_follows_a_live_run_until_it_finishes(api: Api) -> None:
    b = research_trace("live")
    api.call(lambda: append_all(api.store, b.events[:5]))
    seen: list[int] = []
    with api.client.stream("GET", f"{API}/runs/live/stream") as response:
        buffer = ""
        wrote = False
        for chunk in response.iter_text():
            buffer += chunk
            for kind, data in _sse(buffer):
                if kind == "events":
                    seen.extend(e["seq"] for e in json.loads(data) if e["seq"] not in seen)
            if len(seen) >= 5 and not wrote:
                wrote = True
                api.call(lambda: append_all(api.store, b.events[5:]))
            if "event: end" in buffer:
                break
    assert seen == list(range(len(b.events)))


# -- schema and pages -------------------------------------------------------------------


def test_openapi_document_describes_the_versioned_api(api: Api) -> None:
    doc = api.client.get(f"{API}/openapi.json").json()
    assert set(doc["paths"]) == {
        f"{API}/runs", f"{API}/runs/{{run_id}}", f"{API}/runs/{{run_id}}/events",
        f"{API}/runs/{{run_id}}/stream", f"{API}/runs/{{run_id}}/keyframe",
    }
    assert all(set(methods) == {"get"} for methods in doc["paths"].values())
    schemas = doc["components"]["schemas"]
    assert {"RunsPage", "RunDetail", "EventsPage", "RunInfo", "GraphStep",
            "StepSucceeded", "GraphPatched"} <= set(schemas)
    stream = doc["paths"][f"{API}/runs/{{run_id}}/stream"]["get"]["responses"]["200"]
    assert "text/event-stream" in stream["content"]


def test_pages_are_served_and_unknown_runs_get_a_404_page(api: Api) -> None:
    run_id = api.call(lambda: run_into(api.store, demo_workflow()))
    home = api.client.get("/")
    assert home.status_code == 200 and 'src="/static/js/runs.js"' in home.text
    run = api.client.get(f"/runs/{run_id}")
    assert run.status_code == 200 and 'src="/static/js/run.js"' in run.text
    missing = api.client.get("/runs/" + XSS.replace("/", "%2F"))
    assert missing.status_code == 404
    assert 'href="/"' in missing.text and "<script>window" not in missing.text
    assert "&lt;script&gt;" in missing.text
    assert api.client.get("/static/js/run.js").status_code == 200
    assert api.client.get("/static/css/viewer.css").status_code == 200


def test_every_response_carries_a_strict_content_security_policy(api: Api) -> None:
    for path in ("/", f"{API}/runs", "/static/js/dom.js", "/runs/none"):
        csp = api.client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp, path


def test_the_api_is_read_only(api: Api) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert api.client.request(method, f"{API}/runs").status_code == 405


# -- the cache under a live stream -------------------------------------------------------


def test_a_live_stream_reads_only_new_events_while_other_runs_fill_the_cache() -> None:
    from fastapi.testclient import TestClient

    store = MemoryStore()
    reader = CountingReader(store)
    b = research_trace("live")
    # polls further apart than the requests below take: they push "live" out between two
    with TestClient(create_app(reader, poll_interval_s=0.5)) as client:
        client.portal.call(lambda: append_all(store, b.events[:5] + many_runs(12)))
        seen: list[int] = []
        with client.stream("GET", f"{API}/runs/live/stream") as response:
            buffer, wrote = "", False
            for chunk in response.iter_text():
                buffer += chunk
                for kind, data in _sse(buffer):
                    if kind == "events":
                        seen.extend(e["seq"] for e in json.loads(data) if e["seq"] not in seen)
                if len(seen) >= 5 and not wrote:
                    wrote = True
                    reader.calls.clear()
                    for i in range(12):  # more runs than the cache keeps: 'live' is pushed out
                        assert client.get(f"{API}/runs/run-{i:04}").status_code == 200
                    client.portal.call(lambda: append_all(store, b.events[5:]))
                if "event: end" in buffer:
                    break
    assert seen == list(range(len(b.events)))
    live_reads = [after for run_id, after in reader.calls if run_id == "live"]
    assert live_reads and None not in live_reads  # never the whole run again


# -- a store that stops answering while a run is followed ------------------------------------


def _follow(client: Any, url: str, on_message: Any) -> list[tuple[str, str]]:
    """Read an SSE stream to its end, calling ``on_message(messages so far)`` as they come."""
    messages: list[tuple[str, str]] = []
    deadline = time.monotonic() + 20
    with client.stream("GET", url) as response:
        buffer = ""
        for chunk in response.iter_text():
            assert time.monotonic() < deadline, f"the stream did not end: {messages}"
            buffer += chunk
            *done, buffer = buffer.split("\n\n")
            for block in done:
                messages.extend(_sse(block + "\n\n"))
            if done:
                on_message(messages)
    return messages


def test_a_stream_outlives_a_store_that_stops_answering() -> None:
    from fastapi.testclient import TestClient

    store = FlakyStore()
    b = research_trace("live")
    with TestClient(create_app(store, poll_interval_s=0.02)) as client:
        client.portal.call(lambda: append_all(store, b.events[:5]))
        steps: list[str] = []

        def act(messages: list[tuple[str, str]]) -> None:
            kinds = [kind for kind, _ in messages] or [""]
            if kinds == ["events"] and not steps:
                steps.append("down")
                client.portal.call(lambda: store.set_down("cannot reach the server: refused"))
            elif kinds[-1] == "store_error" and steps == ["down"]:
                steps.append("up")
                client.portal.call(lambda: append_all(store, b.events[5:]))
                client.portal.call(lambda: store.set_down(None))

        messages = _follow(client, f"{API}/runs/live/stream", act)
    kinds = [kind for kind, _ in messages]
    assert kinds == ["events", "store_error", "store_ok", "events", "end"]
    assert json.loads(messages[1][1]) == {"detail": "cannot reach the server: refused"}
    seqs = [e["seq"] for kind, data in messages if kind == "events" for e in json.loads(data)]
    assert seqs == list(range(len(b.events)))


def test_a_stream_says_when_its_run_is_deleted(api: Api) -> None:
    b = research_trace("doomed")
    api.call(lambda: append_all(api.store, b.events[:5]))

    def act(messages: list[tuple[str, str]]) -> None:
        if [kind for kind, _ in messages] == ["events"]:
            api.call(lambda: api.store.delete_runs(["doomed"]))

    messages = _follow(api.client, f"{API}/runs/doomed/stream", act)
    assert [kind for kind, _ in messages] == ["events", "gone"]
    assert "doomed" in json.loads(messages[-1][1])["detail"]
    # nor is it served from the viewer's memory any more
    assert api.client.get(f"{API}/runs/doomed").status_code == 404
    assert api.client.get(f"{API}/runs/doomed/events").status_code == 404
    assert api.client.get("/runs/doomed").status_code == 404


def test_a_run_page_over_a_store_that_cannot_be_read_is_a_page_saying_why() -> None:
    from fastapi.testclient import TestClient

    store = FlakyStore()
    with TestClient(create_app(store)) as client:
        client.portal.call(lambda: append_all(store, research_trace("r").events))
        client.portal.call(lambda: store.set_down("cannot reach the server <at> 127.0.0.1"))
        page = client.get("/runs/r")
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "503: the trace store cannot be read" in page.text
        assert "<title>Run r: the trace store cannot be read · Ponder</title>" in page.text
        assert "cannot reach the server &lt;at&gt; 127.0.0.1" in page.text
        api = client.get(f"{API}/runs/r")
        assert api.status_code == 503
        assert api.json() == {"detail": "cannot reach the server <at> 127.0.0.1"}


# -- replay keyframes and a step's events ------------------------------------------------


def _keyframe(api: Api, run_id: str, **params: Any) -> dict[str, Any]:
    response = api.client.get(f"{API}/runs/{quote(run_id, safe='')}/keyframe", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _kf_statuses(kf: dict[str, Any]) -> dict[str, str]:
    strings = kf["strings"]
    return {s[0]: strings[s[2]] for s in kf["steps"]}


def test_a_keyframe_is_the_run_folded_up_to_it_and_follows_a_growing_run(api: Api) -> None:
    from orchestrator.viewer._replay import KEYFRAME_EVERY

    events = big_trace("keyed", 1000).events  # 3005 events: a keyframe after 2000
    api.call(lambda: append_all(api.store, events[:1500]))
    tip = _keyframe(api, "keyed")
    assert (tip["n_events"], tip["finished"], tip["keyframe"]["index"]) == (1500, False, 1499)
    assert _keyframe(api, "keyed", index=1499)["keyframe"]["index"] == -1  # none kept yet
    api.call(lambda: append_all(api.store, events[1500:]))
    page = _keyframe(api, "keyed", index=2500)
    kf = page["keyframe"]
    assert page["keyframe_every"] == KEYFRAME_EVERY == 2000
    assert (kf["index"], kf["seq"], page["n_events"], page["finished"]) == (1999, 1999, 3005, True)
    # the event at its position, named (the page's replay label does not hold it)
    assert (kf["kind"], kf["step_id"]) == (events[1999].kind, getattr(events[1999], "step_id", None))
    folded = fold_events(events[:2000])
    assert _kf_statuses(kf) == {s.id: s.status for s in folded.steps}
    assert kf["run"]["status"] == "running" and not kf["run"]["finished"]
    s0 = next(s for s in kf["steps"] if s[0] == "s0")
    attempt = s0[13][0]
    assert kf["strings"][attempt[3]] == "succeeded"
    started = next(e for e in events if getattr(e, "step_id", None) == "s0"
                   and e.kind == "step_started")
    assert abs(kf["t0"] + attempt[1] - started.ts) < 1e-6
    end = _keyframe(api, "keyed")["keyframe"]
    assert end["index"] == 3004 and end["run"]["finished"]
    assert (end["kind"], end["step_id"]) == ("run_finished", None)
    assert set(_kf_statuses(end).values()) == {"succeeded"}
    assert "input" not in json.dumps(end)  # no step's input or output is in a keyframe
    assert _keyframe(api, "keyed", index=-1)["keyframe"]["steps"] == []
    assert api.client.get(f"{API}/runs/keyed/keyframe", params={"index": -2}).status_code == 422
    assert api.client.get(f"{API}/runs/nope/keyframe").status_code == 404


def test_a_keyframe_comes_with_the_events_after_it_when_asked(api: Api) -> None:
    events = big_trace("keyed-events", 2000).events  # 6005 events: keyframes every 2000
    api.call(lambda: append_all(api.store, events))
    page = _keyframe(api, "keyed-events", index=2500, events_to=2600)
    assert page["keyframe"]["index"] == 1999
    assert [e["seq"] for e in page["events"]] == list(range(2000, 2601))
    assert page["has_more"] is True
    assert page["events"][0] == json.loads(events[2000].model_dump_json())
    end = _keyframe(api, "keyed-events", index=4500, events_to=9000)
    assert [e["seq"] for e in end["events"]] == list(range(4000, 6005))
    assert end["has_more"] is False
    start = _keyframe(api, "keyed-events", index=10, events_to=10)  # before the first keyframe
    assert start["keyframe"]["index"] == -1 and len(start["events"]) == 11
    none = _keyframe(api, "keyed-events", index=2500, events_to=1999)
    assert (none["events"], none["has_more"]) == ([], True)
    big = _keyframe(api, "keyed-events", index=-1, events_to=10**6)
    assert len(big["events"]) == EVENTS_PAGE_MAX and big["has_more"] is True
    assert "events" not in _keyframe(api, "keyed-events", index=2500)


def test_a_step_s_own_events_are_read_by_its_id(api: Api) -> None:
    trace = research_trace("own")
    api.call(lambda: append_all(api.store, trace.events))
    mine = [e.seq for e in trace.events if getattr(e, "step_id", None) == "plan.2"]
    assert len(mine) >= 4  # two attempts, a retry between them

    def seqs(**params: Any) -> tuple[list[int], bool]:
        page = api.client.get(f"{API}/runs/own/events",
                              params={"step_id": "plan.2", **params}).json()
        assert all(e["step_id"] == "plan.2" for e in page["events"])
        return [e["seq"] for e in page["events"]], page["has_more"]

    assert seqs() == (mine, False)
    assert seqs(after_seq=mine[0]) == (mine[1:], False)
    assert seqs(limit=2) == (mine[:2], True)
    assert api.client.get(f"{API}/runs/own/events",
                          params={"step_id": "nope"}).json()["events"] == []
    assert api.client.get(f"{API}/runs/nope/events", params={"step_id": "x"}).status_code == 404


def test_runs_filter_interrupted_apart_from_running(api: Api) -> None:
    """`status=interrupted` lists the running runs whose process is gone, and
    `status=running` no longer lists them, as `ponder runs --status` does; the API took
    no `interrupted` (422), and the runs page could not show only them."""
    api.call(lambda: append_all(api.store, stopped_run("gone", writer_alive=False)
                                + stopped_run("alive", writer_alive=True)
                                + stopped_run("gone-too", writer_alive=False)))

    def ids(status: str, **more: Any) -> tuple[list[str], list[str], bool]:
        page = api.client.get(f"{API}/runs", params={"status": status, **more}).json()
        return [r["id"] for r in page["runs"]], page["interrupted"], page["has_more"]

    assert ids("interrupted") == (["gone-too", "gone"], ["gone-too", "gone"], False)
    assert ids("running") == (["alive"], [], False)
    assert ids("interrupted", limit=1) == (["gone-too"], ["gone-too"], True)
    assert ids("interrupted", limit=1, offset=1) == (["gone"], ["gone"], False)
