"""A run is found by a unique start of its id, as the CLI finds it (``ponder runs`` shows
ids shortened): the page redirects to the run's own address, the API answers for the
run; a start that several runs' ids share is a 409 naming them; on every store."""

from __future__ import annotations

import json
import re

from viewer_server import Api
from viewer_traces import CountingReader, append_all, research_trace

from orchestrator.store import MemoryStore
from orchestrator.viewer import create_app

API = "/api/v1"
RUNS = ("abc-123", "abd-456", "xyz-1", "dir/run-1", "same", "same-2")


def _store_runs(api: Api) -> None:
    for run_id in RUNS:
        api.call(lambda r=run_id: append_all(api.store, research_trace(r).events))


def test_the_page_of_a_unique_start_of_a_run_id_redirects_to_the_run(api: Api) -> None:
    _store_runs(api)
    response = api.client.get("/runs/xy", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/runs/xyz-1"
    assert response.headers["cache-control"] == "no-store"
    # the query goes along (a viewer's ?token=), a / in the id stays one segment
    response = api.client.get("/runs/dir%2Fr?token=t", follow_redirects=False)
    assert response.headers["location"] == "/runs/dir%2Frun-1?token=t"
    page = api.client.get("/runs/xy")
    assert page.status_code == 200 and str(page.url).endswith("/runs/xyz-1")
    # a whole id is its own run, even one that starts another's
    for run_id in ("xyz-1", "same"):
        assert api.client.get(f"/runs/{run_id}", follow_redirects=False).status_code == 200


def test_the_page_of_an_ambiguous_start_names_the_runs_and_an_unknown_id_is_404(
        api: Api) -> None:
    _store_runs(api)
    response = api.client.get("/runs/ab", follow_redirects=False)
    assert response.status_code == 409
    assert "409: ambiguous run id" in response.text
    assert "Several runs' ids start with <code>ab</code>" in response.text
    for run_id in ("abc-123", "abd-456"):
        assert f'<a href="/runs/{run_id}"><code>{run_id}</code></a>' in response.text
    assert "Traceback" not in response.text
    # the runs in the order the API's 409 lists them (newest first)
    matches = api.client.get(f"{API}/runs/ab").json()["matches"]
    assert sorted(matches) == ["abc-123", "abd-456"]
    assert _title(response.text) == f"Ambiguous run id ab: {', '.join(matches)} · Ponder"
    missing = api.client.get("/runs/nope", follow_redirects=False)
    assert missing.status_code == 404 and "no run <code>nope</code>" in missing.text
    assert _title(missing.text) == "Run not found: nope · Ponder"
    nowhere = api.client.get("/nowhere")
    assert nowhere.status_code == 404 and _title(nowhere.text) == "Page not found · Ponder"


def _title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page)
    assert found is not None, page
    return found.group(1)


def test_an_ambiguous_pages_title_names_a_few_runs_escaped(api: Api) -> None:
    """Many runs share the start: the title names five, as the page does; an id's markup
    (or a placeholder of the page's template) is text."""
    ids = [f"<b>{{{{what}}}}-{i}" for i in range(7)]
    for run_id in ids:
        api.call(lambda r=run_id: append_all(api.store, research_trace(r).events))
    response = api.client.get("/runs/%3Cb%3E", follow_redirects=False)
    assert response.status_code == 409
    matches = api.client.get(f"{API}/runs/%3Cb%3E").json()["matches"]
    assert len(matches) > 5  # some of them: enough to tell there are more
    shown = ", ".join(m.replace("<b>", "&lt;b&gt;") for m in matches[:5])
    assert _title(response.text) == f"Ambiguous run id &lt;b&gt;: {shown}, ... · Ponder"
    assert "<b>" not in response.text


def test_the_api_answers_for_the_run_a_unique_start_of_its_id_names(api: Api) -> None:
    _store_runs(api)
    for prefix, run_id in (("xy", "xyz-1"), ("dir%2Fr", "dir/run-1"), ("abc", "abc-123")):
        for steps in ("true", "false"):
            response = api.client.get(f"{API}/runs/{prefix}", params={"steps": steps},
                                      follow_redirects=False)
            assert response.status_code == 200, (prefix, response.text)
            assert response.json()["run"]["id"] == run_id
        events = api.client.get(f"{API}/runs/{prefix}/events").json()
        assert events["run_id"] == run_id and events["events"][0]["run_id"] == run_id
        frame = api.client.get(f"{API}/runs/{prefix}/keyframe").json()
        assert frame["run_id"] == run_id
        stream = api.client.get(f"{API}/runs/{prefix}/stream").text  # finished: it ends
        assert "event: end" in stream and f'"run_id":{json.dumps(run_id)}' in stream
    # a whole id is its own run, even one that starts another's
    assert api.client.get(f"{API}/runs/same").json()["run"]["id"] == "same"


def test_the_api_answers_409_with_the_runs_an_ambiguous_start_names(api: Api) -> None:
    _store_runs(api)
    for path in ("", "/events", "/keyframe", "/stream"):
        response = api.client.get(f"{API}/runs/ab{path}")
        assert response.status_code == 409, path
        body = response.json()
        assert sorted(body["matches"]) == ["abc-123", "abd-456"]
        assert body["detail"].startswith("run id 'ab' is the start of several runs' ids")
        assert body["detail"].endswith("give more of it")
        unknown = api.client.get(f"{API}/runs/nope{path}")
        assert unknown.status_code == 404 and unknown.json() == {
            "detail": "no run 'nope' in the trace store"}
    doc = api.client.get(f"{API}/openapi.json").json()
    answers = doc["paths"]["/api/v1/runs/{run_id}"]["get"]["responses"]
    assert {"404", "409"} <= set(answers)


def test_a_reader_that_resolves_no_ids_takes_whole_ids_only() -> None:
    from fastapi.testclient import TestClient

    store = MemoryStore()
    with TestClient(create_app(CountingReader(store))) as client:
        client.portal.call(lambda: append_all(store, research_trace("xyz-1").events))
        assert client.get(f"{API}/runs/xyz-1").status_code == 200
        assert client.get(f"{API}/runs/xy").status_code == 404
        assert client.get("/runs/xy", follow_redirects=False).status_code == 404
