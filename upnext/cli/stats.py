"""``upnext-gevent stats [--function F] [--since 1h]``: per function, what ended in the window
(completed, failed, retried, cancelled), run time and queue wait percentiles estimated from the
histogram buckets, a sparkline of throughput and one row per minute (per hour past 3 h).

The facts come from store/stats.py; this module parses the window and renders them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import click

from upnext.cli.common import connection_options, queue_for, table
from upnext.store import stats as store
from upnext.store.admin import Admin
from upnext.store.stats import Counts, FunctionStats

SPARKS = "▁▂▃▄▅▆▇█"
UNITS_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
COLUMNS = ("at (UTC)", "completed", "failed", "retried", "cancelled", "run p50", "run p95", "wait p50", "wait p95")


def parse_since(text: str) -> int:
    """``90s``, ``30m``, ``1h``, ``1d`` (a bare number is seconds) -> seconds, within 24 h."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 1h or 1d", param_hint="--since")
    seconds = round(float(match.group(1)) * UNITS_S[match.group(2) or "s"])
    if not 0 < seconds <= store.MAX_WINDOW_S:
        raise click.BadParameter(f"{text!r} is outside 1 s .. 24 h (minute stats are kept 24 h; "
                                 "longer trends are Prometheus's job)", param_hint="--since")
    return seconds


def sparkline(values: list[int]) -> str:
    """One character per value: the lowest for 0, the others scaled to the largest."""
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[0] if v <= 0 else SPARKS[max(1, round(v / top * (len(SPARKS) - 1)))] for v in values)


@click.command()
@click.option("--function", default=None, help="Only this function (default: every registered one).")
@click.option("--since", "since", default="1h", show_default=True, help="Window ending now: 90s, 30m, 1h, up to 24h.")
@connection_options
def stats(function: str | None, since: str, redis_url: str | None, prefix: str | None, as_json: bool) -> None:
    """Per function: completed, failed, retried, cancelled, run time and queue wait, per minute."""
    since_s = parse_since(since)
    queue = queue_for(redis_url, prefix)
    step, found = store.read_stats(queue, since_s, function)
    if function is not None and not found[0].total.counters_seen and not Admin(queue).is_known(function):
        raise click.ClickException(f"unknown function {function!r}: no worker registered it and it has no stats "
                                   "(see `list`)")
    if as_json:
        click.echo(store.as_json(step, found))
        return
    if not found:
        click.echo("no functions registered")
        return
    click.echo("\n\n".join(_section(s, step, since) for s in found))


def _section(s: FunctionStats, step: int, since: str) -> str:
    """The function's window sums, its sparkline and its rows with anything in them."""
    w = s.window
    head = (f"{s.function}  last {since}: {w.counters['completed']} completed, {w.counters['failed']} failed, "
            f"{w.counters['retried']} retried, {w.counters['cancelled']} cancelled; "
            f"run p95 {_s(w.run.quantile(0.95))}, wait p95 {_s(w.wait.quantile(0.95))}")
    line = f"  per {'minute' if step == 60 else 'hour'}: {sparkline([c.ended for _, c in s.rows])}"
    busy = [(at, c) for at, c in s.rows if c.ended or c.counters["retried"]]
    form = "%H:%M" if step == 60 else "%m-%d %H:00"
    body = table(COLUMNS, [_cells(datetime.fromtimestamp(at, tz=UTC).strftime(form), c) for at, c in busy])
    quiet = len(s.rows) - len(busy)
    tail = [f"({quiet} quiet {'minutes' if step == 60 else 'hours'} not shown)"] if busy and quiet else []
    return "\n".join([head, line, body or "  nothing ended in this window", *tail])


def _cells(at: str, c: Counts) -> list[str | int]:
    return [at, *(c.counters[name] for name in store.COUNTERS),
            *(_s(h.quantile(q)) for h in (c.run, c.wait) for q in (0.5, 0.95))]


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"
