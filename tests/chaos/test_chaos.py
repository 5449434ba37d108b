"""Chaos scenarios with real worker processes: kill -9 loops, Redis restarts, deploys, a frozen
worker, crons under kills. Each counts lost and duplicated jobs from the executions' ledger."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time

import pytest
import redis

import upnext
from tests.chaos import app
from tests.chaos.conftest import duplicates, wait_until
from tests.conftest import free_port
from tests.workers import wait_for
from upnext.store import keys

pytestmark = pytest.mark.chaos
FIGURES: dict[str, dict] = {}


def report(name: str, **figures) -> None:
    FIGURES[name] = figures
    print(f"\nchaos {name}: {json.dumps(figures)}")


def test_kill_9_loop_loses_nothing(fleet, ledger):
    f = fleet(UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="1000")
    for _ in range(2):
        f.start("--concurrency", "50")
    futures = upnext.submit_many(app.work, [{"ms": random.randint(10, 100)} for _ in range(3000)])

    def kill_and_replace():
        f.kill_one()
        f.start("--concurrency", "50")

    # The first kill comes early: on a fast machine the whole run takes under two seconds.
    wait_until(lambda: ledger.scard("effects") == 3000, timeout=90, message="every job to run",
               tick=kill_and_replace, every_s=2.0, first_s=0.5)
    upnext.gather(*futures, timeout=60)
    lost = sum(1 for fut in futures if fut.status() != "complete")
    dups = duplicates(ledger)
    report("kill_9_loop", jobs=3000, kills=f.kills, lost=lost, duplicates=dups, in_flight_at_kills=f.in_flight_at_kills)
    assert f.kills >= 1 and lost == 0 and dups <= f.in_flight_at_kills
    stream = keys.stream("upnext", "work")
    assert ledger.xlen(stream) == 0 and ledger.xpending(stream, keys.GROUP)["pending"] == 0


def test_graceful_deploy_finishes_short_jobs_and_hands_back_long_ones(fleet, ledger):
    f = fleet()
    old = f.start("--concurrency", "20", "--graceful-timeout", "1")
    short = upnext.submit_many(app.work, [{"ms": 200}] * 10)
    long = upnext.submit_many(app.work, [{"ms": 4000}] * 5)
    wait_until(lambda: ledger.hlen("exec") == 15, timeout=20, message="all fifteen running")
    old.signal(signal.SIGTERM)
    assert old.wait(30) == 0
    f.start("--concurrency", "20")
    results = [fut.result(timeout=30) for fut in short + long]
    failed = sum(1 for r in results if not r.ok)
    report("graceful_deploy", short=10, long=5, lost=0, failures=failed, handed_back=len(long))
    assert failed == 0 and all(r.attempts == 1 for r in results)
    assert all(int(ledger.hget("exec", fut.job_id)) == 1 for fut in short)


def test_a_frozen_worker_cannot_finish_a_job_that_was_reclaimed(fleet, ledger):
    f = fleet(UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="1000")
    frozen = f.start()
    wait_for(lambda: frozen.worker_ids(ledger), message="first worker up")
    future = app.work.submit(ms=2500)
    wait_until(lambda: ledger.hget("exec", future.job_id), timeout=20, message="the job started")
    frozen.signal(signal.SIGSTOP)
    try:
        f.start()
        result = future.result(timeout=30)
    finally:
        frozen.signal(signal.SIGCONT)
    wait_until(lambda: "stale_completion" in frozen.output(), timeout=20, message="the late completion fenced")
    record = ledger.hgetall(keys.job("upnext", future.job_id))
    report("frozen_worker", executions=int(ledger.hget("exec", future.job_id)), results=1, stale_rejected=1)
    assert result.ok and record["status"] == "complete" and str(frozen.pid) not in record["worker"]


def test_cron_runs_once_per_second_while_its_workers_are_killed(fleet, ledger):
    f = fleet(UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="1000")
    for _ in range(3):
        f.start()

    def kill_and_replace():
        f.kill_one()
        f.start()

    began = time.monotonic()
    wait_until(lambda: time.monotonic() - began > 20, timeout=40, message="20 s of kills",
               tick=kill_and_replace, every_s=3.0)
    wait_until(lambda: ledger.llen("ticks") > 0, timeout=10, message="cron runs")
    instants = sorted(float(ledger.hget(keys.job("upnext", j), "cron_at") or 0) for j in ledger.lrange("ticks", 0, -1))
    whole = instants[:-3]  # the last few may still be running
    missing = [i for a, b in zip(whole, whole[1:]) for i in range(int(a) + 1, int(b))]
    dups = len(whole) - len(set(whole))
    report("cron_under_kills", seconds=len(whole), kills=f.kills, duplicates=dups, missed=len(missing))
    # At least ten consecutive seconds seen (how many more depends on the machine's load).
    assert f.kills >= 5 and dups == 0 and not missing and len(whole) >= 10


@pytest.fixture
def aof_redis(tmp_path):
    """A redis-server with `appendfsync always` that the scenario can kill and restart."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
            "--appendfsync", "always", "--save", "", "--dir", str(tmp_path)]
    server = {"proc": subprocess.Popen(args, stdout=subprocess.DEVNULL), "url": f"redis://127.0.0.1:{port}/0"}
    client = redis.Redis(port=port)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def restart() -> None:
        server["proc"].kill()
        server["proc"].wait()
        server["proc"] = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_for(up, message="redis back")

    wait_for(up, message="redis up")
    server["restart"] = restart
    yield server
    server["proc"].kill()
    server["proc"].wait()


def test_redis_restarts_lose_no_acknowledged_job(fleet, ledger, aof_redis):
    f = fleet(UPNEXT_REDIS_URL=aof_redis["url"])
    for _ in range(2):
        f.start("--concurrency", "50")
    submitter = upnext.Worker("chaos-web", redis_url=aof_redis["url"])

    @submitter.task(name="work")
    def work(ms: int) -> int: ...

    acknowledged, refused, slowest = [], [], [0.0]

    def submit_all():
        for _ in range(3000):
            began = time.monotonic()
            try:
                acknowledged.append(work.submit(ms=random.randint(5, 30)))
            except redis.ConnectionError:
                refused.append(1)
                time.sleep(0.01)
            slowest[0] = max(slowest[0], time.monotonic() - began)

    producer = threading.Thread(target=submit_all)
    producer.start()
    for _ in range(2):
        wait_until(lambda: ledger.scard("effects") > 300 * (len(refused) + 1), timeout=30, message="progress")
        aof_redis["restart"]()
    producer.join(60)
    wait_until(lambda: all(fut.status() == "complete" for fut in acknowledged), timeout=60,
               message="every acknowledged job to complete")
    report("redis_restart", acknowledged=len(acknowledged), refused=len(refused), lost=0,
           duplicates=duplicates(ledger), slowest_submit_s=round(slowest[0], 3))
    assert len(acknowledged) + len(refused) == 3000 and slowest[0] < 5


def test_poison_jobs_fail_with_a_reason_and_normal_jobs_all_complete(fleet, ledger):
    f = fleet(UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="1000", UPNEXT_MAX_DELIVERIES="3")
    f.start("--processes", "2", "--concurrency", "20")
    normal = upnext.submit_many(app.work, [{"ms": random.randint(10, 50)} for _ in range(500)])
    exits, crashes = app.exits_its_worker.submit(), app.kills_its_child.submit()
    with pytest.raises(upnext.TaskExecutionError, match="max_deliveries=3") as exited:
        exits.result(timeout=60)
    with pytest.raises(upnext.TaskExecutionError, match="died with exit code -9") as crashed:
        crashes.result(timeout=60)
    results = upnext.gather(*normal, return_exceptions=True, timeout=60)
    failed = [r for r in results if isinstance(r, Exception)]
    report("poison", normal=500, normal_failed=len(failed), worker_exits=int(ledger.get("exits")),
           exit_job=exited.value.task_result.failure_reason, child_crash_job=crashed.value.task_result.failure_reason)
    assert int(ledger.get("exits")) == 3 and not failed, failed[:3]
