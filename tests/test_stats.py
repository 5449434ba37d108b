"""``stats``: the per-minute (per-hour past 3 h) counters and histograms, read from keys seeded in
the shared layout (keys.stats_minute / stats_hour / stats_total), through the store and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.apps import jobs
from tests.workers import ROOT, wait_for
from upnext.cli.stats import parse_since, sparkline
from upnext.store import keys
from upnext.store.stats import Counts, Histogram, read_stats

INF_BUCKET = len(keys.STAT_BUCKETS_S) - 1


def ops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))


def register(client, *functions: str) -> None:
    client.hset(keys.functions("upnext"), mapping={f: json.dumps({"kind": "task"}) for f in functions})


def seed(client, key: str, **fields: float) -> None:
    """One stats hash as the finishing Lua call writes it (only the fields that were incremented)."""
    client.hset(key, mapping={k: v for k, v in fields.items()})


def this_minute(client) -> int:
    """Redis's current epoch minute, taken early in a minute so the reads that follow see the same one."""
    wait_for(lambda: int(client.time()[0]) % 60 < 50, timeout=15, message="the start of a minute")
    return int(client.time()[0]) // 60


def histogram(prefix: str, seconds: list[float]) -> dict[str, float]:
    out: dict[str, float] = {f"{prefix}_n": len(seconds), f"{prefix}_sum": sum(seconds)}
    for value in seconds:
        field = f"{prefix}_{keys.stat_bucket(value)}"
        out[field] = out.get(field, 0) + 1
    return out


def test_quantiles_interpolate_within_the_bucket_like_histogram_quantile():
    h = Counts.parse({"run_n": "4", "run_4": "2", "run_9": "2"}).run  # two in (0.05, 0.1], two in (2.5, 5]
    assert h.quantile(0.5) == pytest.approx(0.1)
    assert h.quantile(0.95) == pytest.approx(2.5 + 2.5 * 0.9)
    assert h.quantile(0.25) == pytest.approx(0.075)
    assert Histogram().quantile(0.5) is None
    only_inf = Counts.parse({"run_n": "1", f"run_{INF_BUCKET}": "1"}).run
    assert only_inf.quantile(0.95) == 1800  # +Inf has no upper bound: the last finite one


def test_a_missing_field_reads_as_zero():
    counts = Counts.parse({"completed": "3"})
    assert counts.counters == {"completed": 3, "failed": 0, "retried": 0, "cancelled": 0}
    assert counts.run.n == 0 and counts.wait.sum_s == 0.0


def test_rows_cover_the_window_minute_by_minute_and_leave_older_minutes_out(queue, redis_client):
    register(redis_client, "mail", "idle")
    minute = this_minute(redis_client)
    seed(redis_client, keys.stats_minute("upnext", "mail", minute), completed=3, failed=1,
         **histogram("run", [0.05, 0.04, 2.0, 0.3]), **histogram("wait", [0.001] * 4))
    seed(redis_client, keys.stats_minute("upnext", "mail", minute - 5), completed=2, retried=4, cancelled=1)
    seed(redis_client, keys.stats_minute("upnext", "mail", minute - 60), completed=100)  # 60 min ago: outside 1h
    seed(redis_client, keys.stats_total("upnext", "mail"), completed=105, failed=1, retried=4, cancelled=1)
    step, found = read_stats(queue, 3600)
    assert step == 60 and [s.function for s in found] == ["idle", "mail"]
    mail = found[1]
    assert len(mail.rows) == 60 and mail.rows[-1][0] == minute * 60 and mail.rows[0][0] == (minute - 59) * 60
    assert mail.window.counters == {"completed": 5, "failed": 1, "retried": 4, "cancelled": 1}
    assert mail.total.counters["completed"] == 105
    assert mail.rows[-1][1].run.n == 4 and mail.rows[-1][1].run.counts[keys.stat_bucket(2.0)] == 1
    assert found[0].window.ended == 0


def test_a_window_past_three_hours_is_read_hour_by_hour(queue, redis_client):
    register(redis_client, "mail")
    hour = int(redis_client.time()[0]) // 3600
    seed(redis_client, keys.stats_hour("upnext", "mail", hour - 23), completed=7)
    seed(redis_client, keys.stats_hour("upnext", "mail", hour - 24), completed=50)  # 24 h ago: outside
    step, [mail] = read_stats(queue, 86400, "mail")
    assert step == 3600 and len(mail.rows) == 24
    assert mail.window.counters["completed"] == 7


def test_since_is_checked_and_named():
    assert parse_since("1h") == 3600 and parse_since("90s") == 90 and parse_since("30m") == 1800
    assert parse_since("1d") == 86400 and parse_since("45") == 45
    for bad in ("2d", "0s", "soon", "-1h"):
        with pytest.raises(Exception, match="--since|outside|duration"):
            parse_since(bad)


def test_sparkline_scales_to_the_busiest_row():
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([0, 0]) == "▁▁"


def test_cli_prints_a_table_and_a_sparkline_and_json(redis_client):
    register(redis_client, "mail")
    minute = this_minute(redis_client)
    seed(redis_client, keys.stats_minute("upnext", "mail", minute), completed=8, failed=2,
         **histogram("run", [0.05] * 10), **histogram("wait", [0.2] * 10))
    seed(redis_client, keys.stats_minute("upnext", "mail", minute - 2), completed=4, retried=1)
    text = ops("stats", "--since", "10m")
    assert text.returncode == 0, text.stderr
    assert "mail  last 10m: 12 completed, 2 failed, 1 retried, 0 cancelled" in text.stdout
    assert "per minute: ▁▁▁▁▁▁▁▄▁█" in text.stdout
    assert "completed  failed  retried  cancelled  run p50" in text.stdout
    assert "(8 quiet minutes not shown)" in text.stdout
    data = json.loads(ops("stats", "--function", "mail", "--since", "10m", "--json").stdout)
    assert data["step_s"] == 60 and len(data["functions"][0]["rows"]) == 10
    last = data["functions"][0]["rows"][-1]
    assert last["completed"] == 8 and last["failed"] == 2
    assert 0.025 < last["run_p50_s"] <= 0.05 and 0.1 < last["wait_p95_s"] <= 0.25


def test_cli_refuses_a_window_past_a_day(redis_client):
    done = ops("stats", "--since", "3d")
    assert done.returncode == 2 and "--since" in done.stderr


def run_a_mix(start_worker) -> None:
    """Through a real worker: add x5 complete, needs_the_flag x2 fail, fails_until(3) is retried
    twice and completes, sleep_for(0.05) completes."""
    start_worker("tests.apps.jobs:worker")
    futures = [jobs.add.submit(i, 1) for i in range(5)] + [jobs.needs_the_flag.submit() for _ in range(2)]
    futures += [jobs.fails_until.submit(3), jobs.sleep_for.submit(0.05)]
    wait_for(lambda: all(f.status() in ("complete", "failed") for f in futures), timeout=30,
             message="every job to end")


EXPECTED = {"add": {"completed": 5, "failed": 0, "retried": 0, "cancelled": 0},
            "needs_the_flag": {"completed": 0, "failed": 2, "retried": 0, "cancelled": 0},
            "fails_until": {"completed": 1, "failed": 0, "retried": 2, "cancelled": 0},
            "sleep_for": {"completed": 1, "failed": 0, "retried": 0, "cancelled": 0}}


def test_stats_counts_what_a_real_worker_ran(start_worker, redis_client):
    run_a_mix(start_worker)
    data = json.loads(ops("stats", "--since", "10m", "--json").stdout)
    got = {f["function"]: {k: f["window"][k] for k in ("completed", "failed", "retried", "cancelled")}
           for f in data["functions"] if f["function"] in EXPECTED}
    assert got == EXPECTED
    sleep_for = next(f for f in data["functions"] if f["function"] == "sleep_for")
    assert 0.05 <= sleep_for["window"]["run_p50_s"] <= 0.25  # (0.05, 0.1], or the next on a loaded machine
    assert sum(row["completed"] for row in sleep_for["rows"]) == 1
    text = ops("stats", "--function", "add", "--since", "10m").stdout
    assert "add  last 10m: 5 completed, 0 failed" in text


def test_cli_names_an_unknown_function(redis_client):
    register(redis_client, "mail")
    done = ops("stats", "--function", "mial")
    assert done.returncode == 1 and "unknown function 'mial'" in done.stderr, done.stderr
    assert ops("stats", "--function", "mail").returncode == 0
