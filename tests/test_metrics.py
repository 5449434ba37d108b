"""Prometheus metrics: ``upnext-gevent metrics --bind`` serves /metrics that prometheus_client's
parser reads; gauges match seeded state; a scrape's Redis commands do not grow with the jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apps import jobs
from tests.conftest import free_port
from tests.test_stats import EXPECTED, run_a_mix
from tests.workers import ROOT, wait_for
from upnext.metrics import METRIC_NAMES, UpnextCollector
from upnext.store import keys
from upnext.workflow import submit_many

P = "upnext"



def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())
    except OSError:
        return None


@pytest.fixture
def metrics_url(redis_url, tmp_path) -> Iterator[str]:
    """The real ``metrics`` command on a free port; its /metrics URL once it answers."""
    port = free_port()
    log = open(tmp_path / "metrics.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "upnext.cli", "metrics", "--bind", f"127.0.0.1:{port}"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: proc.poll() is not None or fetch(url) is not None, timeout=20,
                 message="the metrics command to answer")
        assert proc.poll() is None, (tmp_path / "metrics.log").read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def seed_queues(client, now_s: float) -> None:
    """mail: entries added 300 s (delivered, so active), 120 s and 60 s ago (queued), one due and
    one future scheduled job, two failed, paused; late: only a job due 500 s ago. One live worker
    with 3 of 10 slots busy, and a dead one."""
    client.hset(keys.functions(P), mapping={"mail": json.dumps({}), "late": json.dumps({})})
    stream = keys.stream(P, "mail")
    for age_s in (300, 120, 60):
        client.xadd(stream, {"id": f"mail:{age_s}"}, id=f"{int((now_s - age_s) * 1000)}-0")
    client.xgroup_create(stream, keys.GROUP, id="0")
    client.xreadgroup(keys.GROUP, "w1", {stream: ">"}, count=1)
    client.zadd(keys.scheduled(P, "mail"), {"mail:due": now_s - 30, "mail:later": now_s + 3600})
    client.zadd(keys.failed(P, "mail"), {"mail:f1": now_s, "mail:f2": now_s})
    client.sadd(keys.paused_set(P), "mail")
    client.zadd(keys.scheduled(P, "late"), {"late:1": now_s - 500})
    client.sadd(keys.worker_ids(P), "w1", "w2")
    client.set(keys.worker(P, "w1"), json.dumps({"concurrency": 10, "active": 3}))


def test_gauges_match_the_seeded_state(redis_client, metrics_url):
    now_s = float(redis_client.time()[0])
    seed_queues(redis_client, now_s)
    got = samples(fetch(metrics_url) or "")
    depth = {state: got[("upnext_queue_depth", (("function", "mail"), ("state", state)))]
             for state in ("queued", "active", "scheduled", "due", "failed")}
    assert depth == {"queued": 2, "active": 1, "scheduled": 1, "due": 1, "failed": 2}
    assert 119 <= got[("upnext_queue_oldest_age_seconds", (("function", "mail"),))] < 180
    assert 499 <= got[("upnext_queue_oldest_age_seconds", (("function", "late"),))] < 560
    assert got[("upnext_function_paused", (("function", "mail"),))] == 1
    assert got[("upnext_function_paused", (("function", "late"),))] == 0
    assert got[("upnext_workers", ())] == 1
    assert got[("upnext_worker_slots", (("state", "busy"),))] == 3
    assert got[("upnext_worker_slots", (("state", "free"),))] == 7


def test_totals_and_histograms_come_from_the_totals_hash(redis_client, metrics_url):
    redis_client.hset(keys.functions(P), "mail", "{}")
    redis_client.hset(keys.stats_total(P, "mail"), mapping={
        "completed": 5, "failed": 2, "retried": 1, "run_n": 7, "run_sum": 3.5, "run_3": 4, "run_8": 3,
        "wait_n": 7, "wait_sum": 0.01, "wait_0": 7})
    got = samples(fetch(metrics_url) or "")
    status = {s: got[("upnext_jobs_total", (("function", "mail"), ("status", s)))]
              for s in ("completed", "failed", "retried", "cancelled")}
    assert status == {"completed": 5, "failed": 2, "retried": 1, "cancelled": 0}
    bucket = {le: got[("upnext_job_duration_seconds_bucket", (("function", "mail"), ("le", le)))]
              for le in ("0.025", "0.05", "1.0", "2.5", "+Inf")}
    assert bucket == {"0.025": 0, "0.05": 4, "1.0": 4, "2.5": 7, "+Inf": 7}
    assert got[("upnext_job_duration_seconds_count", (("function", "mail"),))] == 7
    assert got[("upnext_job_duration_seconds_sum", (("function", "mail"),))] == 3.5
    assert got[("upnext_queue_wait_seconds_bucket", (("function", "mail"), ("le", "0.005")))] == 7
    names = {family.name for family in text_string_to_metric_families(fetch(metrics_url) or "")}
    assert {n.removesuffix("_total") for n in METRIC_NAMES} == names


def commands_of_one_scrape(redis_client, collector: UpnextCollector) -> int:
    def calls() -> int:
        return sum(int(v["calls"]) for v in redis_client.info("commandstats").values())

    before = calls()
    list(collector.collect())
    return calls() - before


def test_a_scrape_costs_the_same_commands_with_10_or_1000_queued_jobs(redis_client, queue):
    collector = UpnextCollector(queue)
    costs = []
    for n in (10, 1000):
        redis_client.flushall()
        submit_many(jobs.add, [{"a": i, "b": 1} for i in range(n)])
        for i in range(n // 2):  # some scheduled and failed as well, and one worker
            redis_client.zadd(keys.scheduled(P, "add"), {f"add:s{i}": i})
            redis_client.zadd(keys.failed(P, "add"), {f"add:f{i}": i})
        redis_client.hset(keys.functions(P), "add", "{}")
        redis_client.sadd(keys.worker_ids(P), "w1")
        redis_client.set(keys.worker(P, "w1"), json.dumps({"concurrency": 10, "active": 0}))
        costs.append(commands_of_one_scrape(redis_client, collector))
    assert costs[0] == costs[1], costs


def test_metrics_without_prometheus_client_names_the_extra(redis_url):
    code = ("import sys; sys.modules['prometheus_client'] = None; from upnext.cli.main import main; "
            "main(['metrics', '--bind', '127.0.0.1:9'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "upnext-gevent[metrics]" in done.stderr, done.stderr


def test_a_bad_bind_is_named(redis_url):
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "metrics", "--bind", "localhost"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--bind" in done.stderr


def test_metrics_totals_equal_what_a_real_worker_ran(start_worker, redis_client, metrics_url):
    run_a_mix(start_worker)
    got = samples(fetch(metrics_url) or "")
    for function, counts in EXPECTED.items():
        for status, count in counts.items():
            assert got[("upnext_jobs_total", (("function", function), ("status", status)))] == count, (function, status)
    sleep_for = (("function", "sleep_for"),)
    assert got[("upnext_job_duration_seconds_bucket", (*sleep_for, ("le", "0.05")))] == 0
    assert got[("upnext_job_duration_seconds_bucket", (*sleep_for, ("le", "0.25")))] == 1  # 50 ms, loaded machine
    assert got[("upnext_queue_wait_seconds_count", sleep_for)] == 1
    assert got[("upnext_workers", ())] == 1

    def idle() -> bool:
        now = samples(fetch(metrics_url) or "")
        return (now[("upnext_worker_slots", (("state", "busy"),))],
                now[("upnext_worker_slots", (("state", "free"),))]) == (0, 10)

    wait_for(idle, timeout=10, message="the worker to publish its 10 free slots")
