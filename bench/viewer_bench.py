"""Viewer benchmark: how long ``ponder view`` takes to answer the first request for a
large run, and how much memory its process needs for it.

One run of about ``--events`` events is written to a SQLite store (a planner run:
a ``graph_patched`` event per 100 steps, then ``step_scheduled``, ``step_started`` and
``step_succeeded`` per step, with a rendered prompt and an output of a few hundred
characters each). Then, for each request below, a fresh ``ponder view`` process
(``python -m orchestrator.viewer``) is started over that file; once it answers a
request that reads no event of the run, the request is timed, and the process's peak
resident memory (``VmHWM``, Linux) is read after it:

- ``run page``: ``GET /runs/{id}``, the HTML page a browser opens first;
- ``run (steps=false)``: ``GET /api/v1/runs/{id}?steps=false``, what that page asks for;
- ``run (steps=true)``: ``GET /api/v1/runs/{id}``, the run with every step folded;
- ``events page``: ``GET /api/v1/runs/{id}/events``, the first page (5,000 events);
- ``all events``: every page, each asked with ``after_seq`` (time to the last one);
- ``stream``: ``GET /api/v1/runs/{id}/stream`` of the finished run, read to its end;
- ``keyframe (tip)``: ``GET /api/v1/runs/{id}/keyframe``, the run's state after its last
  event, what the run page of a long run asks for instead of every event;
- ``scrub (keyframe + events)``: what the page asks when its scrubber moves to the
  middle of the run: the keyframe at or before it, then the events after that.

Each request is then asked again on the same server (``again``): the run is read once
(the viewer keeps its summary and keyframes), and a later request reads only what is
new. ``keyframe bytes`` is the size of the tip keyframe's answer. (Requests that a
server of an older Ponder does not have are reported as failed.)

``--store-read N`` also times, N times in this process, what every one of those first
reads starts with: reading the run's events from the store a page at a time
(``SqlStore.events_page``, 5,000 a page), rows decoded into events, with the CPU time
of the process (all threads; on a shared machine, compare CPU). ``--store-url URL``
makes it read another store (a PostgreSQL URL, say) instead of the ``--db`` file,
writing the run into it first when it does not hold it; ``--only`` with no name skips
the requests (the server reads the SQLite file only).

``--fold N`` times, N times in this process, what the viewer itself does with those
events, the store's part left out: the run's events are read once (not timed) and held
in memory, then a viewer app (``create_app``) over a reader that hands them out a page
at a time answers ``GET /api/v1/runs/{id}?steps=false`` (folding every event: the run's
DAG nodes, replay keyframes and counts; then its answer) and after it
``GET /api/v1/runs/{id}/keyframe`` (the tip keyframe, from what that fold kept), each
with the CPU time of the process. A fresh app each time.

``PYTHONPATH`` is passed on to the server, so that another version of Ponder (a tree
extracted with ``git archive``) can be measured with the same script.

Usage::

    python bench/viewer_bench.py [--events 200000] [--db FILE] [--only NAME ...]
                                 [--store-read N [--store-url URL]] [--fold N]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio

from orchestrator.runtime import events as ev
from orchestrator.store import RunFilter, RunInfo, SqlStore, StoredEvent

RUN_ID = "viewer-bench"
PROMPT = "You are a careful planner. " * 8
_PATCH_EVERY = 100
_BATCH = 2000


def run_events(run_id: str, n_events: int) -> Iterator[StoredEvent]:
    """About ``n_events`` events of one finished planner run, in ``seq`` order."""
    n_steps = max(1, (n_events - 4) * _PATCH_EVERY // (3 * _PATCH_EVERY + 1))
    seq = iter(range(2**31 - 1))
    t = 1_790_000_000.0
    usage = ev.UsageModel(prompt_tokens=120, completion_tokens=48)
    yield ev.RunStarted(run_id=run_id, seq=next(seq), ts=t, workflow="bench", inputs={"q": "x"},
                        spec={"name": "bench", "steps": [{"id": "plan", "planner": "llmcompiler",
                                                          "goal": "everything"}]})
    yield ev.StepStarted(run_id=run_id, seq=next(seq), ts=t, step_id="plan", step_kind="plan",
                         attempt=1, input={})
    for first in range(0, n_steps, _PATCH_EVERY):
        ids = [f"s{i}" for i in range(first, min(n_steps, first + _PATCH_EVERY))]
        yield ev.GraphPatched(
            run_id=run_id, seq=next(seq), ts=t, source_step="plan", reason="llmcompiler plan 1",
            steps=[{"id": sid, "kind": "llm", "parent": "plan", "spec": {"model": "m"},
                    "deps": [f"s{int(sid[1:]) - _PATCH_EVERY}"] if first else []}
                   for sid in ids],
        )
        for sid in ids:
            t += 0.001
            yield ev.StepScheduled(run_id=run_id, seq=next(seq), ts=t, step_id=sid,
                                   step_kind="llm", pool="llm", priority=1.0)
            yield ev.StepStarted(run_id=run_id, seq=next(seq), ts=t, step_id=sid,
                                 step_kind="llm", attempt=1, input={"prompt": PROMPT + sid})
            yield ev.StepSucceeded(run_id=run_id, seq=next(seq), ts=t + 0.5, step_id=sid,
                                   attempt=1, output={"answer": f"{sid} says " + "ok " * 40},
                                   raw="ok", usage=usage, latency_s=0.5)
    yield ev.StepSucceeded(run_id=run_id, seq=next(seq), ts=t + 1, step_id="plan", attempt=1,
                           output="done")
    yield ev.RunFinished(run_id=run_id, seq=next(seq), ts=t + 1, status="succeeded",
                         usage=usage, duration_s=t - 1_790_000_000.0)


async def write_run(path: Path | str, n_events: int) -> int:
    """Write the run into a new store (a SQLite file's path, or a URL); returns how many
    events."""
    return await write_events(path, run_events(RUN_ID, n_events))


async def _holds_run(url: Path | str) -> bool:
    async with SqlStore(str(url)) as store:
        return await store.run_info(RUN_ID) is not None


async def write_events(path: Path | str, events: Iterable[StoredEvent]) -> int:
    """Append events to a new store (a SQLite file's path, or a URL) in batches; returns
    how many."""
    written = 0
    async with SqlStore(str(path)) as store:
        batch: list[StoredEvent] = []
        for e in events:
            batch.append(e)
            if len(batch) == _BATCH:
                await store.append(batch)
                written += len(batch)
                batch = []
        if batch:
            await store.append(batch)
            written += len(batch)
    return written


# -- the server ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(pid: int, field: str) -> int | None:
    """A ``VmHWM``/``VmRSS`` line of ``/proc/PID/status`` in KiB (None off Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _get(base: str, path: str, timeout: float = 600.0) -> bytes:
    with urllib.request.urlopen(base + path, timeout=timeout) as response:
        return response.read()  # type: ignore[no-any-return]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str

    @classmethod
    def start(cls, db: Path) -> Server:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.viewer", "--db", str(db), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        server = cls(proc, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:  # a request that reads no event of the run
            try:
                _get(server.base, "/api/v1/openapi.json", timeout=5)
                return server
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    server.stop()
                    raise RuntimeError(f"the viewer did not start: {err}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the requests ----------------------------------------------------------------------

_RUN = "/api/v1/runs/" + quote(RUN_ID, safe="")


def _all_events(base: str) -> int:
    after: int | None = None
    n = 0
    while True:
        page = json.loads(_get(base, _RUN + "/events"
                               + (f"?after_seq={after}" if after is not None else "")))
        n += len(page["events"])
        if not page["has_more"]:
            return n
        after = page["last_seq"]


def _stream(base: str) -> int:
    body = _get(base, _RUN + "/stream").decode()
    assert "event: end" in body, body[-200:]
    return sum(len(json.loads(line[6:])) for block in body.split("\n\n")
               if block.startswith("id: ") for line in block.splitlines()
               if line.startswith("data: "))


def _events_page(base: str) -> int:
    return len(json.loads(_get(base, _RUN + "/events"))["events"])


def _keyframe(base: str) -> int:
    return len(_get(base, _RUN + "/keyframe"))


def _scrub(base: str) -> int:
    tip = json.loads(_get(base, _RUN + "/keyframe"))  # how many events (read once)
    kf = json.loads(_get(base, _RUN + f"/keyframe?index={tip['n_events'] // 2}"))["keyframe"]
    page = json.loads(_get(base, _RUN + f"/events?after_seq={kf['seq']}&limit=4000"))
    return int(kf["index"]) + 1 + len(page["events"])


def _run(steps: bool) -> Callable[[str], int]:
    def get(base: str) -> int:
        body = json.loads(_get(base, _RUN + ("" if steps else "?steps=false")))
        return int(body["run"]["n_events"])
    return get


REQUESTS: dict[str, Callable[[str], Any]] = {
    "run page": lambda base: len(_get(base, "/runs/" + quote(RUN_ID, safe=""))),
    "run (steps=false)": _run(False),
    "run (steps=true)": _run(True),
    "events page": _events_page,
    "all events": _all_events,
    "stream": _stream,
    "keyframe (tip)": _keyframe,
    "scrub (keyframe + events)": _scrub,
}


def measure(db: Path, name: str) -> dict[str, Any]:
    """Time ``name`` on a fresh server; its peak memory before and after, and what the
    request returned (the run's events counted, or the page's size in bytes)."""
    server = Server.start(db)
    try:
        idle = _status_kib(server.proc.pid, "VmHWM")
        t0 = time.perf_counter()
        try:
            result = REQUESTS[name](server.base)
        except OSError as exc:  # an older viewer without this route
            return {"request": name, "seconds": float("nan"), "again": float("nan"),
                    "idle_kib": idle, "peak_kib": None, "result": f"failed: {exc}"}
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        REQUESTS[name](server.base)
        again = time.perf_counter() - t1
        peak = _status_kib(server.proc.pid, "VmHWM")
        return {"request": name, "seconds": seconds, "again": again, "idle_kib": idle,
                "peak_kib": peak, "result": result}
    finally:
        server.stop()


async def store_read(db: Path | str, times: int) -> list[tuple[float, float, int]]:
    """(CPU s, wall s, events) of each of ``times`` reads of the run, a page at a time,
    from the store ``db`` (a SQLite file's path, or a URL)."""
    out: list[tuple[float, float, int]] = []
    if not times:
        return out
    async with SqlStore(str(db)) as store:
        for _ in range(times):
            cpu, wall = time.process_time(), time.perf_counter()
            after: int | None = None
            n = 0
            while True:
                page = await store.events_page(RUN_ID, after_seq=after, limit=5000)
                n += len(page)
                if len(page) < 5000:
                    break
                after = page[-1].seq
            out.append((time.process_time() - cpu, time.perf_counter() - wall, n))
    return out


async def read_all(db: Path | str) -> list[StoredEvent]:
    """Every event of the run in the store ``db``, read a page at a time."""
    out: list[StoredEvent] = []
    async with SqlStore(str(db)) as store:
        while page := await store.events_page(
                RUN_ID, after_seq=out[-1].seq if out else None, limit=5000):
            out.extend(page)
    return out


class HeldEvents:
    """A viewer's reader of one run whose events are already in memory, decoded: what
    the viewer does with them, without the store's reading."""

    def __init__(self, events: list[StoredEvent]) -> None:
        self._events = events
        self._seqs = [e.seq for e in events]

    async def list_runs(self, filters: RunFilter | None = None, *, limit: int = 50,
                        offset: int = 0) -> list[RunInfo]:
        return []

    async def events(self, run_id: str, *, after_seq: int | None = None,
                     kinds: Collection[str] | None = None) -> list[StoredEvent]:
        page = await self.events_page(run_id, after_seq=after_seq, limit=len(self._events))
        return [e for e in page if kinds is None or e.kind in kinds]

    async def events_page(self, run_id: str, *, after_seq: int | None = None,
                          limit: int) -> list[StoredEvent]:
        if run_id != RUN_ID:
            return []
        start = 0 if after_seq is None else bisect.bisect_right(self._seqs, after_seq)
        return self._events[start:start + limit]

    async def last_event(self, run_id: str, *, after_seq: int | None = None
                         ) -> StoredEvent | None:
        if run_id != RUN_ID or not self._events:
            return None
        last = self._events[-1]
        return last if after_seq is None or last.seq > after_seq else None

    async def run_info(self, run_id: str) -> RunInfo | None:
        return None


async def viewer_fold(events: list[StoredEvent], times: int) -> list[dict[str, float]]:
    """For each of ``times`` fresh viewer apps over ``events`` held in memory, the CPU
    and wall seconds of its first ``?steps=false`` (the fold of every event and its
    answer), then of ``/keyframe`` (the tip), and their answers' sizes."""
    import httpx

    from orchestrator.viewer import create_app

    out: list[dict[str, float]] = []
    for _ in range(times):
        gc.collect()  # the last app's garbage, not this one's
        app = create_app(HeldEvents(events))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            row: dict[str, float] = {}
            for name, path in (("run", _RUN + "?steps=false"), ("keyframe", _RUN + "/keyframe")):
                cpu, wall = time.process_time(), time.perf_counter()
                response = await client.get(path)
                row[name + "_cpu"] = time.process_time() - cpu
                row[name + "_wall"] = time.perf_counter() - wall
                response.raise_for_status()
                row[name + "_bytes"] = len(response.content)
            out.append(row)
    return out


def _mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.0f}"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--db", type=Path, help="the SQLite file (default: a temporary one); "
                        "an existing file holding the run is reused")
    parser.add_argument("--only", nargs="*", choices=sorted(REQUESTS),
                        help="these requests (none: only the store read)")
    parser.add_argument("--store-read", type=int, default=0, metavar="N",
                        help="also time reading every event from the store, N times")
    parser.add_argument("--store-url", help="the store --store-read and --fold read (default: the "
                        "--db file); the run is written into it when it does not hold it")
    parser.add_argument("--fold", type=int, default=0, metavar="N",
                        help="also time the viewer's own work on the run's events held in "
                        "memory (the first ?steps=false, then /keyframe), N times")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db: Path = args.db or Path(tmp) / "viewer-bench.db"
        only_store = args.store_url is not None and args.only == []
        if not db.exists() and not only_store:
            t0 = time.perf_counter()
            n = anyio.run(write_run, db, args.events)
            print(f"wrote {n:,} events in {time.perf_counter() - t0:.1f} s "
                  f"({db.stat().st_size / 2**20:,.0f} MiB)")
        print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python "
              f"{platform.python_version()}\n")
        rows = [measure(db, name) for name in (REQUESTS if args.only is None else args.only)]
        store: Path | str = db
        if args.store_url and (args.store_read or args.fold):
            store = args.store_url
            if not anyio.run(_holds_run, store):
                t0 = time.perf_counter()
                n = anyio.run(write_run, store, args.events)
                print(f"wrote {n:,} events to --store-url in {time.perf_counter() - t0:.1f} s")
        reads = anyio.run(store_read, store, args.store_read)
        folds = anyio.run(viewer_fold, anyio.run(read_all, store), args.fold) if args.fold else []
    if reads:
        print("| store read, every event, pages of 5,000 | CPU s | wall s | events |")
        print("|---|---:|---:|---:|")
        for i, (cpu, wall, n) in enumerate(reads, 1):
            print(f"| read {i} | {cpu:.2f} | {wall:.2f} | {n} |")
        print()
    if folds:
        print("| viewer, events in memory | `?steps=false` CPU s | wall s | then `/keyframe` "
              "CPU s | wall s | answers KiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for i, f in enumerate(folds, 1):
            print(f"| fold {i} | {f['run_cpu']:.2f} | {f['run_wall']:.2f} "
                  f"| {f['keyframe_cpu']:.2f} | {f['keyframe_wall']:.2f} "
                  f"| {f['run_bytes'] / 1024:,.0f} + {f['keyframe_bytes'] / 1024:,.0f} |")
        print()
    if rows:
        print("| first request on a fresh server | time s | again s | peak RSS MiB (idle) "
              "| answer |")
        print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['request']} | {r['seconds']:.2f} | {r['again']:.2f} "
              f"| {_mib(r['peak_kib'])} ({_mib(r['idle_kib'])}) | {r['result']} |")
    return rows


if __name__ == "__main__":
    main()
