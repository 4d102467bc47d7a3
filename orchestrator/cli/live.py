"""A rich live view of a run: a hook that folds events into a table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.errors import without_step_id
from orchestrator.store.fold import RunFold

_STYLE = {"pending": "dim", "running": "yellow", "succeeded": "green", "failed": "red",
          "skipped": "magenta", "cancelled": "red"}


class LiveView:
    """Shows steps pending/running/done/failed with tokens and elapsed time."""

    def __init__(self, console: Console, max_rows: int = 30) -> None:
        self.console = console
        self.max_rows = max_rows
        self.summaries: dict[str, RunFold] = {}
        self.root: str | None = None
        self.t0 = time.perf_counter()
        self.live = Live(console=console, refresh_per_second=8, transient=False)

    async def __call__(self, events: Sequence[Any]) -> None:
        for e in events:
            if e.kind == "run_started" and e.run_id not in self.summaries:
                self.summaries[e.run_id] = RunFold(e.run_id)
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
        prompt = completion = 0
        for rec in s.steps.values():
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
            prompt += rec.get("prompt_tokens", 0)
            completion += rec.get("completion_tokens", 0)
        head = Text(f"{s.run.get('workflow', '')}  run {s.run['id']}  ", style="bold")
        head.append("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        head.append(f"  tokens {prompt}+{completion}  {time.perf_counter() - self.t0:.1f}s")
        rows = list(s.steps.values())
        running = [r for r in rows if r["status"] == "running"]
        shown = (running + [r for r in rows if r["status"] != "running"])[: self.max_rows]
        now = time.time()
        cells = []
        for r in shown:
            started = r.get("started_at")
            dur = ((r.get("finished_at") or now) - started) if started else None
            tokens = r.get("prompt_tokens", 0) + r.get("completion_tokens", 0)
            cells.append({"step": r["id"], "kind": r.get("kind") or "", "status": r["status"],
                          "att": str(r["attempts"]), "tokens": str(tokens or ""),
                          "time": f"{dur:.1f}s" if dur is not None else "",
                          "note": without_step_id(r["id"], r.get("error"))[:60]})
        columns = _fitting_columns(cells, self.console.width)
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for col in columns:
            # an id and a status are read whole: a narrow terminal folds an id over lines
            # and leaves out other columns (see _fitting_columns) rather than cut them
            table.add_column(col, no_wrap=col == "status",
                             min_width=max(len(r[col]) for r in cells) if col == "status" and cells
                             else None, overflow="fold" if col == "step" else "ellipsis")
        for row in cells:
            # ids and errors are the user's (`s[check0]`): text, never rich markup
            table.add_row(*(Text(row[col], style=_STYLE.get(row[col], "") if col == "status"
                                 else "") for col in columns))
        if len(rows) > len(shown):
            table.add_row(f"... {len(rows) - len(shown)} more", *[""] * (len(columns) - 1))
        return Group(head, table)


#: the live table's columns, and those left out first where the terminal is too narrow
_COLUMNS = ("step", "kind", "status", "att", "tokens", "time", "note")
_DROPPED_FIRST = ("note", "kind", "att", "tokens", "time")
#: the width the note column is given when deciding what fits (longer notes are cut)
_NOTE_WIDTH = 12


def _fitting_columns(rows: list[dict[str, str]], width: int) -> list[str]:
    """The columns that fit in ``width`` with every step id and status whole: all of
    them on a wide terminal, fewer on a narrow one (at 40 columns: step, status, time)."""
    need = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in _COLUMNS}
    need["note"] = min(need["note"], _NOTE_WIDTH)
    columns = list(_COLUMNS)
    for col in _DROPPED_FIRST:
        if sum(need[c] for c in columns) + 2 * (len(columns) - 1) <= width:
            break
        columns.remove(col)
    return columns
