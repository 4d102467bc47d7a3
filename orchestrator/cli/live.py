"""A rich live view of a run: a hook that folds events into a table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.runtime.summary import RunSummary

_STYLE = {"pending": "dim", "running": "yellow", "succeeded": "green", "failed": "red",
          "skipped": "magenta", "cancelled": "red"}


class LiveView:
    """Shows steps pending/running/done/failed with tokens and elapsed time."""

    def __init__(self, console: Console, max_rows: int = 30) -> None:
        self.console = console
        self.max_rows = max_rows
        self.summaries: dict[str, RunSummary] = {}
        self.root: str | None = None
        self.t0 = time.perf_counter()
        self.live = Live(console=console, refresh_per_second=8, transient=False)

    async def __call__(self, events: Sequence[Any]) -> None:
        for e in events:
            if e.kind == "run_started" and e.run_id not in self.summaries:
                self.summaries[e.run_id] = RunSummary(e.run_id)
                self.root = self.root or e.run_id
            summary = self.summaries.get(e.run_id)
            if summary is not None:
                summary.apply(e)
        self.live.update(self.render())

    def render(self) -> Group:
        if self.root is None:
            return Group(Text("starting..."))
        s = self.summaries[self.root]
        counts: dict[str, int] = {}
        for rec in s.steps.values():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        head = Text(f"{s.workflow}  run {s.run_id}  ", style="bold")
        head.append("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        head.append(f"  tokens {s.usage.prompt_tokens}+{s.usage.completion_tokens}"
                    f"  {time.perf_counter() - self.t0:.1f}s")
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in ("step", "kind", "status", "att", "tokens", "time", "note"):
            table.add_column(col)
        rows = list(s.steps.values())
        running = [r for r in rows if r.status == "running"]
        shown = (running + [r for r in rows if r.status != "running"])[: self.max_rows]
        now = time.time()
        for r in shown:
            dur = ((r.finished_at or now) - r.started_at) if r.started_at else None
            table.add_row(r.id, r.kind, Text(r.status, style=_STYLE.get(r.status, "")),
                          str(r.attempts), str(r.usage.total or ""),
                          f"{dur:.1f}s" if dur is not None else "",
                          (r.error or "")[:60])
        if len(rows) > len(shown):
            table.add_row(f"... {len(rows) - len(shown)} more", "", "", "", "", "", "")
        return Group(head, table)
