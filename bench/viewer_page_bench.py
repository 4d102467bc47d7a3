"""Viewer page benchmark: how the run page behaves in Chromium on a large run.

A run is written to a SQLite store, ``ponder view`` (``python -m orchestrator.viewer``)
serves it, and Chromium (Playwright, ``/usr/bin/chromium``) opens its page. Measured:

- ``graph drawn``: from navigation to the first drawing of the graph (the page marks it);
- ``all events``: to the page's ``data-ready`` (every event it asks for is in);
- ``JS heap``: used JS heap after a garbage collection (CDP ``Runtime.getHeapUsage``);
- ``scrub``: setting the scrubber to the middle, then back to 10 %, until the label
  shows the new position's event (each; on a long run, once the keyframe and events
  read for it are in: while they are read the label says ``loading``);
- ``click``: clicking a step until its details show;
- ``toggle``: expanding then folding the largest nested graph, until drawn;
- ``playback``: the longest gap between two animation frames over 2 s of playback
  at 1000 events/s (a page that stays responsive keeps it near 16 ms); then the longest
  and the median gap over 2 s of playback from the middle of the run, where each frame
  draws a state holding half of the run's steps, with the time spent in the page's
  animation-frame callbacks (where it draws) that took over 0.5 ms (median and worst);
- ``events sent to the page``: events in the answers of ``/events`` and of
  ``/keyframe?events_to=`` (not counting a step's own, read when it is opened), over
  the whole session;
- ``JS heap after scrubbing``: used JS heap after the scrubs, click and playback.

Shapes (``--shape``):

- ``events``: :func:`viewer_bench.run_events`, a planner run of about ``--events`` events
  (200,000: 66,444 steps, all nested under one plan step);
- ``graph``: ``--steps`` top-level steps in layers of 50, each depending on one to three
  of the layer before, and a plan step that adds ``--nested`` steps in three levels
  (plans inside plans); about 3 events per step;
- ``outputs``: ``--steps`` tool steps one after the other, each giving an output of
  ``--output-mb`` MB (4.75 by default) and a prompt of a tenth of that. Measured only:
  ``graph drawn``, ``all events``, the bytes of the page's reads of events, and ``open
  a step``: clicking the sixth step (one the graph draws at first) until its output,
  read whole, shows (its first 100,000 characters, where the page lays out no more
  until asked).

Usage::

    python bench/viewer_page_bench.py [--shape events|graph|outputs] [--events N]
        [--steps N] [--nested N] [--output-mb MB] [--db FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))

from viewer_bench import RUN_ID, Server, run_events, write_events

from orchestrator.runtime import events as ev
from orchestrator.store import StoredEvent

CHROMIUM = "/usr/bin/chromium"


def graph_events(run_id: str, n_steps: int, n_nested: int) -> Iterator[StoredEvent]:
    """A run of ``n_steps`` top-level steps and a plan adding ``n_nested`` nested steps."""
    rng = random.Random(7)
    seq = iter(range(2**31 - 1))
    t = 1_790_000_000.0
    yield ev.RunStarted(run_id=run_id, seq=next(seq), ts=t, workflow="bench-graph", inputs={},
                        spec={"name": "bench-graph", "steps": [
                            {"id": "plan", "planner": "llmcompiler", "goal": "g"}]})
    ids = [f"s{i}" for i in range(n_steps)]
    layers = [ids[i:i + 50] for i in range(0, n_steps, 50)]
    patch = [{"id": sid, "kind": "tool", "parent": None, "spec": {"tool": "calc"},
              "deps": rng.sample(layers[li - 1], k=min(len(layers[li - 1]), rng.randint(1, 3)))
              if li else []}
             for li, layer in enumerate(layers) for sid in layer]
    yield ev.GraphPatched(run_id=run_id, seq=next(seq), ts=t, source_step="plan",
                          reason="static plan 1", steps=patch)
    # plan -> 10 sub-plans -> 10 sub-sub-plans each -> the rest as leaves
    nested: list[tuple[str, str]] = []
    subs = [f"plan.{i}" for i in range(min(10, n_nested))]
    nested += [(s, "plan") for s in subs]
    subsubs = [(f"{s}.{j}", s) for s in subs for j in range(10)][: max(0, n_nested - len(nested))]
    nested += subsubs
    parents = [s for s, _ in subsubs] or subs or ["plan"]
    nested += [(f"{parents[k % len(parents)]}.x{k}", parents[k % len(parents)])
               for k in range(max(0, n_nested - len(nested)))]
    yield ev.GraphPatched(run_id=run_id, seq=next(seq), ts=t, source_step="plan",
                          reason="agot plan 1",
                          steps=[{"id": sid, "kind": "plan" if sid.count(".") < 3 else "llm",
                                  "parent": parent, "deps": [], "spec": {}}
                                 for sid, parent in nested])
    usage = ev.UsageModel(prompt_tokens=100, completion_tokens=20)
    for sid in ["plan"] + [s for s, _ in nested] + ids:
        t += 0.002
        yield ev.StepScheduled(run_id=run_id, seq=next(seq), ts=t, step_id=sid,
                               step_kind="tool", pool="p", priority=1.0)
        yield ev.StepStarted(run_id=run_id, seq=next(seq), ts=t, step_id=sid,
                             step_kind="tool", attempt=1, input={"prompt": "p " + sid})
        yield ev.StepSucceeded(run_id=run_id, seq=next(seq), ts=t + 0.05, step_id=sid,
                               attempt=1, output={"answer": sid}, usage=usage, latency_s=0.05)
    yield ev.RunFinished(run_id=run_id, seq=next(seq), ts=t + 1, status="succeeded",
                         usage=usage, duration_s=1.0)


def output_events(run_id: str, n_steps: int, output_mb: float) -> Iterator[StoredEvent]:
    """A run of ``n_steps`` tool steps in a row, each with an output of ``output_mb`` MB."""
    size = int(output_mb * 1_000_000)
    t = 1_790_000_000.0
    steps = [{"id": f"s{i}", "tool": "echo", "args": {}} for i in range(n_steps)]
    yield ev.RunStarted(run_id=run_id, seq=0, ts=t, workflow="bench-outputs", inputs={},
                        spec={"name": "bench-outputs", "steps": steps})
    seq = 1
    for i in range(n_steps):
        text = chr(ord("a") + i % 26) * size
        yield ev.StepStarted(run_id=run_id, seq=seq, ts=t + i, step_id=f"s{i}",
                             step_kind="tool", attempt=1, input={"prompt": text[: size // 10]})
        yield ev.StepSucceeded(run_id=run_id, seq=seq + 1, ts=t + i + 0.5, step_id=f"s{i}",
                               attempt=1, output=text, latency_s=0.5)
        seq += 2
    yield ev.RunFinished(run_id=run_id, seq=seq, ts=t + n_steps, status="succeeded",
                         duration_s=float(n_steps))


def _launch(pw: Any, out: dict[str, Any]) -> tuple[Any, Any, list[str]]:
    """Headless Chromium, a page of 1400 x 900, and the list its errors go to; the
    browser's version goes into ``out``."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--no-first-run"])
    out["chromium"] = browser.version
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return browser, page, errors


def _open_run(page: Any, base: str, out: dict[str, Any], timeout_s: float) -> None:
    """Open the run's page; the times to its first drawing of the graph (``graph drawn``)
    and to its ``data-ready`` (``all events``) go into ``out``, in ms."""
    t0 = time.perf_counter()
    page.goto(f"{base}/runs/{RUN_ID}")
    page.wait_for_function("() => window.__ponderFirstRenderMs !== undefined",
                           timeout=timeout_s * 1000)
    out["graph drawn"] = (time.perf_counter() - t0) * 1000
    page.wait_for_selector("body[data-ready]", timeout=timeout_s * 1000)
    out["all events"] = (time.perf_counter() - t0) * 1000


def measure_outputs(base: str, step_id: str, size: int, timeout_s: float = 600
                    ) -> dict[str, Any]:
    """Open the run's page, then step ``step_id``, whose output is ``size`` characters."""
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser, page, errors = _launch(pw, out)
        sent = [0]
        page.on("response", lambda r: sent.__setitem__(
            0, sent[0] + int(r.headers.get("content-length", 0)))
                if "/events" in r.url and "step_id=" not in r.url else None)
        _open_run(page, base, out, timeout_s)
        out["bytes of events read (MB)"] = sent[0] / 1e6
        out["open a step"] = _timed(lambda: (
            page.evaluate("""(id) => [...document.querySelectorAll('#dag g.step')]
                .find((g) => g.getAttribute('data-step-id') === id)
                .dispatchEvent(new MouseEvent('click', {bubbles: true}))""", step_id),
            page.wait_for_function(
                """(n) => { const t = document.querySelector('#detail [data-field="output"]')
                    ?.textContent ?? ""; return t.length >= n && !t.includes("[truncated"); }""",
                arg=min(size, 99_999), timeout=timeout_s * 1000)))
        out["page errors"] = errors
        browser.close()
    return out


_MAX_FRAME_GAP = """async (ms) => {
    let last = performance.now(), worst = 0;
    const end = last + ms;
    await new Promise((done) => {
        const f = (now) => { worst = Math.max(worst, now - last); last = now;
                             if (now < end) requestAnimationFrame(f); else done(); };
        requestAnimationFrame(f);
    });
    return worst;
}"""


_FRAME_GAPS = """async (ms) => {
    const gaps = [];
    let last = performance.now();
    const end = last + ms;
    await new Promise((done) => {
        const f = (now) => { gaps.push(now - last); last = now;
                             if (now < end) requestAnimationFrame(f); else done(); };
        requestAnimationFrame(f);
    });
    return gaps;
}"""


_BREAKDOWN = """() => {
    const marks = Object.fromEntries(performance.getEntriesByType('mark')
        .map((m) => [m.name + ' at', m.startTime]));
    const api = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/'));
    const busy = (window.__ponderLongTasks || []).reduce((a, t) => a + t, 0);
    return {...marks, 'API requests': api.length,
            'API waiting (sum of request to response end)': api.reduce(
                (a, r) => a + r.responseEnd - r.startTime, 0),
            'long tasks (sum)': busy};
}"""


def _heap_mib(cdp: Any) -> float:
    cdp.send("HeapProfiler.collectGarbage")
    return float(cdp.send("Runtime.getHeapUsage")["usedSize"]) / 2**20


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def measure_page(base: str, timeout_s: float = 600) -> dict[str, Any]:
    """Open the run's page in Chromium and measure it (times in ms, heap in MiB)."""
    from playwright.sync_api import expect, sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser, page, errors = _launch(pw, out)
        cdp = page.context.new_cdp_session(page)
        # the time spent in each animation-frame callback (the page draws in them), kept
        # while window.__ponderRaf is an array
        page.add_init_script("""(() => { const raf = window.requestAnimationFrame.bind(window);
            window.requestAnimationFrame = (f) => raf((now) => { const t0 = performance.now();
                try { f(now); } finally { if (window.__ponderRaf)
                    window.__ponderRaf.push(performance.now() - t0); } }); })();""")
        page.add_init_script("""window.__ponderLongTasks = [];
            new PerformanceObserver((l) => { for (const e of l.getEntries())
                window.__ponderLongTasks.push(e.duration); }).observe({type: 'longtask'});""")
        sent = [0]

        def on_response(response: Any) -> None:
            if (("/events" in response.url and "step_id=" not in response.url)
                    or "events_to=" in response.url):  # a keyframe with the events after it
                sent[0] += response.body().count(b'"run_id":') - 1

        page.on("response", on_response)
        _open_run(page, base, out, timeout_s)
        out["JS heap MiB"] = _heap_mib(cdp)
        out.update(page.evaluate(_BREAKDOWN))
        n = int(page.eval_on_selector("#scrubber", "s => Number(s.max) + 1"))
        label = page.locator("#replay-label")
        # just past a keyframe (one every 2,000 events): at a keyframe's own position the
        # page of commit d5386fc never named the event (its label kept saying "loading")
        for name, at in (("scrub to middle", n // 2 + 1), ("scrub back to 10 %", n // 10 + 1)):
            out[name] = _timed(lambda at=at: (page.locator("#scrubber").fill(str(at)),
                                               expect(label).to_have_text(
                                                   re.compile(rf"^event {at + 1}/\d+ \u00b7 \+"),
                                                   timeout=timeout_s * 1000)))
        out["click"] = _timed(lambda: (page.click("#dag g.step.node >> nth=0"),
                                       expect(page.locator('#detail [data-field="id"]'))
                                       .to_be_visible(timeout=timeout_s * 1000)))
        toggle = page.locator("#dag [data-toggle]").first
        if toggle.count():
            tid = toggle.get_attribute("data-toggle")
            out["toggle"] = _timed(lambda: (toggle.click(), page.wait_for_function(
                "() => new Promise((r) => requestAnimationFrame(() => r(true)))")))
            out["toggled"] = tid
        page.select_option("#speed", "1000")
        page.locator("#scrubber").fill("0")
        page.click("#btn-play")
        out["playback worst frame"] = page.evaluate(_MAX_FRAME_GAP, 2000)
        page.click("#btn-play")
        # the same from the middle of the run: each frame's state holds half its steps
        at = n // 2 + 1
        page.locator("#scrubber").fill(str(at))
        expect(label).to_have_text(re.compile(rf"^event {at + 1}/\d+ \u00b7 \+"),
                                   timeout=timeout_s * 1000)
        page.evaluate("() => { window.__ponderRaf = []; }")
        page.click("#btn-play")
        gaps = page.evaluate(_FRAME_GAPS, 2000)
        page.click("#btn-play")
        spent = sorted(page.evaluate("() => window.__ponderRaf.filter((t) => t > 0.5)"))
        out["playback from the middle: worst frame"] = max(gaps)
        out["playback from the middle: median frame"] = sorted(gaps)[len(gaps) // 2]
        out["playback from the middle: frames drawn"] = len(spent)
        out["playback from the middle: JS per frame, median"] = spent[len(spent) // 2]
        out["playback from the middle: JS per frame, worst"] = spent[-1]
        out["JS heap after scrubbing MiB"] = _heap_mib(cdp)
        out["events sent to the page"] = sent[0]
        out["events in the scrubber"] = n
        out["page errors"] = errors
        browser.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["events", "graph", "outputs"], default="events")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--nested", type=int, default=500)
    parser.add_argument("--output-mb", type=float, default=4.75)
    parser.add_argument("--db", type=Path, help="the SQLite file (default: a temporary one); "
                        "an existing file holding the run is reused")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db: Path = args.db or Path(tmp) / "viewer-page-bench.db"
        if not db.exists():
            events = (run_events(RUN_ID, args.events) if args.shape == "events"
                      else graph_events(RUN_ID, args.steps, args.nested)
                      if args.shape == "graph"
                      else output_events(RUN_ID, args.steps, args.output_mb))
            n = anyio.run(write_events, db, events)
            print(f"wrote {n:,} events ({db.stat().st_size / 2**20:,.0f} MiB)")
        server = Server.start(db)
        try:
            out = (measure_outputs(server.base, f"s{min(5, args.steps - 1)}",
                                   int(args.output_mb * 1_000_000))
                   if args.shape == "outputs" else measure_page(server.base))
        finally:
            server.stop()
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
          f"{platform.python_version()}, Chromium {out['chromium']}\n")
    for key, value in out.items():
        print(f"{key}: {value:,.0f}" if isinstance(value, float) else f"{key}: {value}")
    return out


if __name__ == "__main__":
    main()
