"""The ``status`` command: workers (live, or dead until pruned) with their jobs in flight, per
function what is queued, running, scheduled and failed, and notes on what holds work back.

Workers publish their in-flight count within about a second of a change, so the rows are fresh;
the facts come from store/overview.py, this module only renders them (a table, or ``--json``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from upnext.cli.common import connection_options, queue_for, table
from upnext.store.overview import Overview, note_text

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
        note["text"] = note_text(note, now)
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


def _ago(now: float, then: float | None) -> str:
    return f"{now - then:.1f}s ago" if then else "never"


