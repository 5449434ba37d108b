"""``upnext-gevent jobs``: ended jobs, newest first (store/history.py), filtered by function,
status, time window, idempotency key or workflow root, a page at a time, as a table or ``--json``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import click

from upnext.cli.common import connection_options, queue_for, table, utc_time
from upnext.cli.views import config_option, redactor
from upnext.store.admin import Admin
from upnext.store.history import ENDED_STATUSES, list_jobs

UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
COLUMNS = ("job_id", "status", "attempts", "completed", "run", "error")


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``7d`` (ago) as the unix time it names."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration such as 90s, 15m, 1h or 7d", param_hint="--since")
    return time.time() - float(match[1]) * UNITS_S[match[2]]


@click.command("jobs")
@click.option("--function", "functions", multiple=True, help="Only this function (repeatable; default all).")
@click.option("--status", type=click.Choice(ENDED_STATUSES), default=None, help="Only jobs that ended so.")
@click.option("--since", default=None, help="Only jobs that ended within this long ago (90s, 15m, 1h, 7d).")
@click.option("--key", default=None, help="Only jobs submitted with this idempotency key.")
@click.option("--root", "root_id", default=None, help="Only jobs of the workflow rooted at this job id.")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=50, show_default=True, help="Rows per page.")
@click.option("--cursor", default=None, help="Where the previous page stopped (it prints it).")
@connection_options
@config_option
def jobs(functions: tuple[str, ...], status: str | None, since: str | None, key: str | None, root_id: str | None,
         limit: int, cursor: str | None, redis_url: str | None, prefix: str | None, as_json: bool,
         config_path: str | None) -> None:
    """Jobs that ended (complete, failed, cancelled), newest first, kept for job_ttl_seconds.
    A row holds no arguments or result (``show JOB_ID`` does)."""
    redact = redactor(config_path)
    queue = queue_for(redis_url, prefix)
    names = list(functions) or list(Admin(queue).functions())
    try:
        rows, next_cursor = list_jobs(queue, names, status=status, since=parse_since(since) if since else None,
                                      key=key, root_id=root_id, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cursor") from None
    rows = [redact(row) for row in rows]
    if as_json:
        click.echo(json.dumps({"jobs": rows, "next_cursor": next_cursor}, indent=2))
        return
    click.echo(table(COLUMNS, [_cells(row) for row in rows]) or "no ended jobs match")
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}")


def _cells(row: dict[str, Any]) -> list[Any]:
    """A row's table cells; a field a redact hook removed prints empty."""
    ended, started, reason = row.get("completed_at"), row.get("started_at"), row.get("failure_reason")
    run = f"{ended - started:.3f}s" if isinstance(ended, float) and isinstance(started, float) else "-"
    status = str(row.get("status", "")) + (f" ({reason})" if reason not in (None, "cancelled") else "")
    when = utc_time(ended) if isinstance(ended, float) else "-"
    return [row.get("job_id", ""), status, row.get("attempts", ""), when, run, str(row.get("error") or "")[:80]]
