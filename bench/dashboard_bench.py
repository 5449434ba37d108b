"""The dashboard at scale (issue 15), on a loopback redis-server of its own: every page and API
call timed with --history ended jobs (default 1,000,000) over --functions functions (default
100), seeded as the finishing Lua calls write them (stats_bench.seed_history, seed_stats: 24 h
of stats, every bucket full), and the Redis commands each page view costs, counted with INFO
commandstats. Two timings per address: a first viewer (the shared snapshot is empty: Redis is
read) and another viewer within the same second (served from the snapshot, live.py).

Usage: python bench/dashboard_bench.py [--quick] [--history N] [--functions N] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import redis
from run import local_redis, machine
from stats_bench import seed_history, seed_stats

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # this checkout's upnext

OPTIONS = {"kind": "task", "retries": 3, "retry_delay": 1.0, "retry_backoff": 2.0, "timeout": 60.0,
           "executor": "thread", "rate_limit": None, "max_concurrency": None, "routing_group": None,
           "group_max_concurrency": None, "hide_args": False}


def addresses(client: redis.Redis) -> list[str]:
    """Every page and GET endpoint, on real ids of the seeded history."""
    failed_id = client.zrevrange("upnext:{fn0}:failed", 0, 0)[0]
    complete_id = "fn1:" + client.xrevrange("upnext:{fn1}:ended", count=1)[0][1]["j"]
    paths = ["/", "/functions", "/functions/fn0", "/jobs", "/jobs?function=fn0", "/jobs?status=failed",
             "/jobs?since=1h", f"/jobs/{complete_id}", f"/jobs/{failed_id}", "/failed", "/failed?function=fn0",
             "/stuck", "/workers", f"/search?q={failed_id}", "/search?q=no-such-key", "/metrics"]
    api = [p.replace("/", "/api/", 1) if p != "/" else "/api/overview" for p in paths if p != "/metrics"]
    return paths + api + ["/api/stats", "/api/bulk/retry?function=fn0&error=timeout"]


def register(client: redis.Redis, functions: int) -> None:
    from upnext.store import keys

    client.hset(keys.functions("upnext"), mapping={f"fn{f}": json.dumps(OPTIONS) for f in range(functions)})


def commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config|resetstat"))


def settle() -> None:
    """Wait for a background chart read a view started (it would count in the next measure)."""
    for thread in threading.enumerate():
        if thread.name.startswith("dashboard-refresh"):
            thread.join(60)


def sampled_ms(prepare, call, repeat: int = 10) -> float:
    """Median wall time of ``call`` in ms, ``prepare`` run untimed before each sample."""
    samples = []
    for _ in range(repeat + 1):
        prepare()
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
        settle()
    return statistics.median(samples[1:])


def measure(url: str, paths: list[str]) -> list[tuple[str, float, float, float, int]]:
    """(address, ms cold, ms for a live refresh, ms for another viewer, Redis commands of a live
    refresh; the charts' read is its own row)."""
    from werkzeug.test import Client

    from upnext.dashboard import make_app
    from upnext.dashboard.views import charts

    app = make_app(url)
    client = Client(app)

    def fresh_charts() -> None:  # a refresh finds the charts younger than their 10 s
        app.snapshots.clear()
        app.snapshots.get("charts", lambda: charts(app.queue))

    rows = []
    for path in paths:
        def get(path: str = path) -> None:
            answer = client.get(path)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        cold_ms = sampled_ms(app.snapshots.clear, get)
        refresh_ms = sampled_ms(fresh_charts, get)
        shared_ms = sampled_ms(lambda: None, get)
        fresh_charts()
        app.queue.client.config_resetstat()
        get()
        rows.append((path, cold_ms, refresh_ms, shared_ms, commands(app.queue.client)))
    chart_ms = sampled_ms(app.snapshots.clear, app.charts)
    app.snapshots.clear()
    app.queue.client.config_resetstat()
    app.charts()
    rows.append(("charts", chart_ms, 0.0, 0.0, commands(app.queue.client)))
    return rows


def report(rows: list[tuple[str, float, float, float, int]], opts: argparse.Namespace) -> str:
    lines = [f"Machine: {machine()}. {opts.history:,} ended jobs in history over {opts.functions} functions, "
             "24 h of stats each (every bucket full); medians of 10.", "",
             "Cold: nothing cached (a dashboard just started; the overview then reads its charts in the "
             "background). Live refresh: the page's 1 s snapshot expired (every poll of an open page), the "
             "charts' 10 s one not. Another viewer: served from the shared snapshot. Commands: one live "
             "refresh; the charts' read is counted on its own row.", "",
             "| address | cold (ms) | live refresh (ms) | another viewer (ms) | Redis commands per refresh |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| `{path}` | {cold:.1f} | {refresh:.1f} | {shared:.2f} | {count:,} |"
              for path, cold, refresh, shared, count in rows[:-1]]
    charts_ms, charts_count = rows[-1][1], rows[-1][4]
    lines.append(f"| the charts' read (background, at most every 10 s while viewed) | {charts_ms:.1f} | - | - | "
                 f"{charts_count:,} |")
    for label, column in (("cold", 1), ("on a live refresh", 2)):
        slow = [row[0] for row in rows[:-1] if row[column] >= 100]
        lines.append(f"Over 100 ms {label}: {', '.join(slow) if slow else 'none'}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--history", type=int, default=None, help="ended jobs (default 1,000,000; 10,000 quick)")
    parser.add_argument("--functions", type=int, default=None, help="functions (default 100; 10 quick)")
    parser.add_argument("--results", help="append the section to this markdown file")
    opts = parser.parse_args()
    opts.history = opts.history or (10000 if opts.quick else 1000000)
    opts.functions = opts.functions or (10 if opts.quick else 100)
    with local_redis() as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        began = time.perf_counter()
        seed_history(client, opts.history, opts.functions)
        seed_stats(client, opts.functions)
        register(client, opts.functions)
        print(f"seeded in {time.perf_counter() - began:.0f} s", file=sys.stderr)
        rows = measure(url, addresses(client))
    text = report(rows, opts)
    print(text)
    if opts.results:
        with open(opts.results, "a") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
