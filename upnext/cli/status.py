"""The ``status`` command: workers (live, or dead until pruned) with their jobs in flight, per
function what is queued, running, scheduled and failed, and notes on what holds work back.

Workers publish their in-flight count within about a second of a change, so the rows are fresh;
the facts come from store/overview.py, this module only renders them (a table, or ``--json``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click

from upnext.cli.common import connection_options, queue_for, table
from upnext.store.overview import Overview

WORKER_COLUMNS = ("worker", "state", "host", "pid", "concurrency", "in flight", "done", "failed", "heartbeat",
                  "last fetch")
FUNCTION_COLUMNS = ("function", "kind", "queued", "active", "scheduled", "failed", "note")
GROUP_COLUMNS = ("group", "max_concurrency", "holders", "functions")


@click.command()
@connection_options
def status(redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Workers (live or dead) and, per function, what is queued, active, scheduled, held back or failed."""
    report = Overview(queue_for(redis_url, prefix)).read()
    now = time.time()
    for note in report["notes"]:
        note["text"] = _note_text(note, now)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(table(WORKER_COLUMNS, [_worker_cells(w, now) for w in report["workers"]]) or "no workers")
    click.echo()
    click.echo(table(FUNCTION_COLUMNS, [[f[c] for c in FUNCTION_COLUMNS] for f in report["functions"]])
               or "no functions registered")
    if report["groups"]:
        click.echo()
        click.echo(table(GROUP_COLUMNS, [[g["group"], g["max_concurrency"], g["holders"], ", ".join(g["functions"])]
                                         for g in report["groups"]]))
    if report["notes"]:
        click.echo("\nnotes:")
        click.echo("\n".join(f"  {note['text']}" for note in report["notes"]))


def _worker_cells(w: dict[str, Any], now: float) -> list[Any]:
    state, inflight = ("live", w["inflight"]) if w["alive"] else ("dead", "-")
    return [w["id"], state, w.get("host"), w.get("pid"), w.get("concurrency"), inflight, w.get("jobs_done"),
            w.get("jobs_failed"), _ago(now, w.get("heartbeat_at")), _ago(now, w.get("last_fetch_at"))]


def _note_text(note: dict[str, Any], now: float) -> str:
    kind = note["kind"]
    if kind == "all_slots_busy":
        workers = f"{note['workers']} worker{'s' if note['workers'] != 1 else ''}"
        return f"{workers}, all slots busy ({note['slots']} slots, {note['queued']} queued)"
    if kind == "delayed":
        return f"{note['function']}: {note['count']} delayed, next at {_instant(note['next_at'], now)}"
    held_by = f"held by dead worker{'s' if len(note['workers']) != 1 else ''} {', '.join(note['workers'])}"
    if note["in_s"] is None:
        return f"{note['function']}: {note['count']} awaiting reclaim, but no live worker runs it ({held_by})"
    when = f"in ~{_span(note['in_s'])}" if note["in_s"] > 0 else "now"
    return f"{note['function']}: {note['count']} awaiting reclaim {when} ({held_by})"


def _instant(at: float, now: float) -> str:
    """A UTC clock time with how far off it is; the date too when it is not within a day."""
    form = "%H:%M:%S" if abs(at - now) < 86400 else "%Y-%m-%d %H:%M:%S"
    relative = f"in {_span(at - now)}" if at > now else f"due {_span(now - at)} ago"
    return f"{datetime.fromtimestamp(at, tz=UTC).strftime(form)} UTC ({relative})"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _ago(now: float, then: float | None) -> str:
    return f"{now - then:.1f}s ago" if then else "never"


