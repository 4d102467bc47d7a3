"""A step's large input, output and raw texts come cut to previews where the run page
reads its events first (``preview=true``), with a marker and their full sizes; the step's
own events, read when it is opened, come whole. A run of 40 steps with 4.75 MB outputs
was sent whole to the page: some 190 MB for its first read."""

from __future__ import annotations

import json
from typing import Any

from viewer_server import Api
from viewer_traces import append_all

from orchestrator.runtime import events as ev
from orchestrator.viewer._preview import PREVIEW_CHARS, PREVIEW_WHOLE_CHARS, marker

API = "/api/v1"
BIG = "é" + "x" * (3 * PREVIEW_CHARS)  # one 2-byte character: sizes are in bytes
BIG_BYTES = len(BIG.encode())


def _run(run_id: str) -> list[ev.Event]:
    t = 1000.0
    items = [{"n": i, "text": "y" * 50} for i in range(2000)]  # long as a whole only
    return [
        ev.RunStarted(run_id=run_id, seq=0, ts=t, workflow="w", inputs={}),
        ev.StepStarted(run_id=run_id, seq=1, ts=t, step_id="s", step_kind="llm", attempt=1,
                       input={"prompt": BIG, "model": "m"}),
        ev.StepSucceeded(run_id=run_id, seq=2, ts=t + 1, step_id="s", attempt=1,
                         output=BIG, raw=BIG),
        ev.StepStarted(run_id=run_id, seq=3, ts=t + 1, step_id="m", step_kind="tool",
                       attempt=1, input={}),
        ev.StepSucceeded(run_id=run_id, seq=4, ts=t + 2, step_id="m", attempt=1,
                         output=items),
        ev.StepSucceeded(run_id=run_id, seq=5, ts=t + 2, step_id="small", attempt=1,
                         output={"a": "short"}, raw="short"),
        ev.RunFinished(run_id=run_id, seq=6, ts=t + 3, status="succeeded", output=BIG),
    ]


def _check_previews(events: list[dict[str, Any]]) -> None:
    started, done, _, listed, small, finished = events[1:]
    cut = BIG[:PREVIEW_CHARS] + marker(BIG_BYTES)
    assert started["input"] == {"prompt": cut, "model": "m"}
    # a structure's size: its JSON text's
    input_bytes = len(json.dumps({"prompt": BIG, "model": "m"}, ensure_ascii=False).encode())
    assert started["truncated"] == {"input": input_bytes}
    assert done["output"] == done["raw"] == cut
    assert done["truncated"] == {"output": BIG_BYTES, "raw": BIG_BYTES}
    whole = json.dumps(_run("x")[4].output, ensure_ascii=False)  # type: ignore[attr-defined]
    assert listed["output"] == whole[:PREVIEW_WHOLE_CHARS] + marker(len(whole.encode()))
    assert listed["truncated"] == {"output": len(whole.encode())}
    assert small["output"] == {"a": "short"} and "truncated" not in small
    # the run's output (often its last step's again): the page does not show it
    assert finished["output"] == cut and finished["truncated"] == {"output": BIG_BYTES}


def test_the_page_s_reads_carry_previews_of_large_values(api: Api) -> None:
    api.call(lambda: append_all(api.store, _run("big")))
    page = api.client.get(f"{API}/runs/big/events?preview=true")
    assert len(page.content) < 10 * PREVIEW_CHARS  # 5 texts cut, one structure
    _check_previews(page.json()["events"])
    kf = api.client.get(f"{API}/runs/big/keyframe?index=-1&events_to=6&preview=true").json()
    _check_previews(kf["events"])
    with api.client.stream("GET", f"{API}/runs/big/stream?preview=true") as stream:
        text = "".join(stream.iter_text())
    data = next(line for line in text.splitlines() if line.startswith("data: ["))
    _check_previews(json.loads(data.removeprefix("data: ")))


def test_a_step_s_own_events_and_reads_without_preview_are_whole(api: Api) -> None:
    api.call(lambda: append_all(api.store, _run("whole")))
    events = api.client.get(f"{API}/runs/whole/events").json()["events"]
    assert events[2]["output"] == BIG and "truncated" not in events[2]
    own = api.client.get(f"{API}/runs/whole/events?step_id=s&preview=true").json()["events"]
    assert [e["seq"] for e in own] == [1, 2]
    assert own[0]["input"]["prompt"] == BIG and own[1]["raw"] == BIG
