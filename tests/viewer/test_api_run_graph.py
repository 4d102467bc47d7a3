"""``GET /api/v1/runs/{id}``'s graph is encoded from the DAG nodes the viewer folded
(plain dicts), not from a model made per node: the same JSON text as the models give,
on every store backend, without a model of each node (a third of the time of a large
run's first summary)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from viewer_server import Api
from viewer_traces import TraceBuilder, append_all, research_trace

from orchestrator.store import RawEvent, StepRecord, fold_events
from orchestrator.viewer import graph_of
from orchestrator.viewer._graph import GraphFold, GraphStep
from orchestrator.viewer.app import RunDetail

API = "/api/v1"


def _odd_run() -> TraceBuilder:
    """Declared steps, patched ones (a dep that is no node, one on itself, a later patch
    of the same id; ``z`` keeps such deps to the end) and a step only other events
    name."""
    b = TraceBuilder("odd")
    b.start([{"id": "a", "tool": "calc"}, {"id": "b", "tool": "calc", "args": {
        "x": "${steps.a.output}"}}])
    b.patch("a", [{"id": "x", "kind": "tool", "deps": ["a", "ghost", "x"], "parent": "a"},
                  {"id": "y", "kind": None, "deps": ["x"]},
                  {"id": "z", "kind": "tool", "deps": ["ghost", "z", "a"]}], at=0.1)
    b.patch("a", [{"id": "x", "kind": "llm", "deps": ["b"], "parent": "a"}], at=0.2,
            reason="llmcompiler plan 2")
    b.run_step("stray", "tool", 0.2, 0.3)
    b.finish(1.0)
    return b


@pytest.mark.parametrize("trace", [research_trace, _odd_run])
@pytest.mark.parametrize("steps", [False, True])
def test_the_runs_answer_is_the_text_its_models_give(
    api: Api, trace: Any, steps: bool
) -> None:
    events = trace().events
    run_id = events[0].run_id
    api.call(lambda: append_all(api.store, events))
    response = api.client.get(f"{API}/runs/{run_id}" + ("" if steps else "?steps=false"))
    assert response.status_code == 200, response.text[:300]
    stored = api.call(lambda: api.store.events(run_id))
    graph = graph_of(stored)
    record = fold_events(stored)
    if steps:
        deps = {g.id: g.deps for g in graph}
        record = record.model_copy(update={"steps": [
            s.model_copy(update={"deps": deps.get(s.id, s.deps)}) for s in record.steps]})
    else:
        record = record.model_copy(update={"steps": []})
    want = RunDetail(run=record, graph=graph, children=[], last_seq=stored[-1].seq,
                     finished=True, now=json.loads(response.text)["now"])
    assert json.loads(response.text) == json.loads(want.model_dump_json())
    # the text too: the nodes' fields in the model's order, nothing else in between
    assert response.text == want.model_dump_json()


def test_no_model_is_made_per_node_for_the_answer(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = research_trace().events
    api.call(lambda: append_all(api.store, events))
    n_nodes = len(graph_of(events))

    def refuse(*args: Any, **kwargs: Any) -> GraphStep:
        raise AssertionError("a GraphStep was made for the answer")

    monkeypatch.setattr(GraphStep, "model_construct", classmethod(refuse))
    for query in ("?steps=false", ""):
        response = api.client.get(f"{API}/runs/research-1{query}")
        assert response.status_code == 200, response.text[:300]
        assert len(response.json()["graph"]) == n_nodes


def test_the_folds_nodes_are_the_models_fields_and_shared_when_unchanged() -> None:
    fold = GraphFold()
    events = _odd_run().events
    for e in events:
        fold.add(e)
    fold.add(RawEvent(run_id="odd", seq=99, ts=2.0, kind="from_the_future", step_id="new"))
    nodes = fold.nodes()
    assert nodes == [g.model_dump() for g in fold.steps()]
    assert [list(n) for n in nodes] == [list(GraphStep.model_fields)] * len(nodes)
    by_id = {n["id"]: n for n in nodes}
    assert by_id["x"]["deps"] == ["b"] and by_id["new"]["deps"] == []
    again = fold.nodes()
    # no copy per call of a node whose deps are all nodes (z's are pruned each time)
    assert all(a is b for a, b in zip(nodes, again, strict=True) if a["id"] != "z")
    # a model's deps are its own: changing them leaves the fold's nodes as they were
    fold.steps()[0].deps.append("zzz")
    assert fold.nodes() == nodes


def test_a_node_whose_id_holds_a_lone_surrogate_is_served_escaped(api: Api) -> None:
    lone = "n\udc80"  # text UTF-8 cannot encode: pydantic's encoder refuses it
    b = TraceBuilder("lone-node")
    b.start([{"id": "a", "tool": "calc"}])
    b.patch("a", [{"id": lone, "kind": "tool", "deps": ["a"], "parent": "a"}], at=0.1)
    b.finish(1.0)
    for event in b.events:  # one a batch (see test_api_payloads)
        api.call(lambda event=event: append_all(api.store, [event]))
    stored = api.call(lambda: api.store.events("lone-node"))
    want = [g.model_dump(mode="json") for g in graph_of(stored)]
    for query in ("?steps=false", ""):
        response = api.client.get(f"{API}/runs/lone-node{query}")
        assert response.status_code == 200, response.text[:300]
        assert response.json()["graph"] == want


def test_a_steps_deps_are_its_nodes_and_the_answer_is_kept(api: Api) -> None:
    """With ``steps=true`` each step carries its DAG node's deps (only steps of the run,
    not itself), and a second request, with no new event, answers from what the first
    one made: no step is copied again."""
    events = _odd_run().events
    api.call(lambda: append_all(api.store, events))
    first = api.client.get(f"{API}/runs/odd")
    assert first.status_code == 200, first.text[:300]
    steps = {s["id"]: s for s in first.json()["run"]["steps"]}
    assert steps["z"]["deps"] == ["a"]
    assert fold_events(events).model_dump()["steps"][-2]["deps"] == ["ghost", "z", "a"]
    copies: list[str] = []
    original = StepRecord.model_copy

    def counted(self: StepRecord, *args: Any, **kwargs: Any) -> StepRecord:
        copies.append(self.id)
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(StepRecord, "model_copy", counted)
        again = api.client.get(f"{API}/runs/odd")
    # the same answer but the viewer's clock
    assert again.text.rsplit(',"now":', 1)[0] == first.text.rsplit(',"now":', 1)[0]
    assert copies == []
