"""Crossing processes: kill -9, SIGTERM drain, poison jobs, the pre-fork supervisor."""

from __future__ import annotations

import json
import os
import signal

import pytest

import upnext
from tests.apps import jobs
from tests.workers import wait_for
from upnext.store import keys

FAST_RECLAIM = {"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1000"}


def ledger(client, name):
    return [json.loads(x) for x in client.lrange(f"ledger:{name}", 0, -1)]


def started_tags(client):
    return {r["tag"] for r in ledger(client, "sleep_for") if r["phase"] == "start"}


def test_jobs_of_a_killed_worker_are_reclaimed_and_all_complete(start_worker, redis_client):
    first = start_worker("tests.apps.jobs:worker", "--concurrency", "10", env=FAST_RECLAIM)
    futures = [jobs.sleep_for.submit(1.0, str(i)) for i in range(20)]
    wait_for(lambda: len(started_tags(redis_client)) >= 10, message="first worker running 10 jobs")
    first.signal(signal.SIGKILL)
    first.wait()
    start_worker("tests.apps.jobs:worker", "--concurrency", "10", env=FAST_RECLAIM)
    assert sorted(f.value(timeout=30) for f in futures) == sorted(str(i) for i in range(20))
    ended = [r["tag"] for r in ledger(redis_client, "sleep_for") if r["phase"] == "end"]
    assert set(ended) == {str(i) for i in range(20)}
    assert redis_client.xlen(keys.stream("upnext", "sleep_for")) == 0


def gate_passers(client):
    return [json.loads(x)["tag"] for x in client.lrange("ledger:waits_for_gate", 0, -1)]


def test_sigterm_lets_running_jobs_finish_and_leaves_unstarted_ones_queued(start_worker, redis_client):
    worker = start_worker("tests.apps.jobs:worker", "--concurrency", "2", "--graceful-timeout", "20")
    futures = [jobs.waits_for_gate.submit(str(i)) for i in range(6)]
    wait_for(lambda: len(gate_passers(redis_client)) == 2, message="two jobs running")
    worker.signal(signal.SIGTERM)
    # The running jobs end only once the worker stopped fetching: were they timed (sleeps), a pytest
    # stalled past their end on a loaded machine let the worker start two more before the signal.
    wait_for(lambda: "worker_draining" in worker.output(), message="the worker to stop fetching")
    redis_client.set("gate", 1)
    assert worker.wait() == 0
    statuses = [f.status() for f in futures]
    assert statuses.count("complete") == 2 and statuses.count("queued") == 4, statuses
    assert "jobs_handed_back" not in worker.output()
    start_worker("tests.apps.jobs:worker", "--concurrency", "4")
    assert sorted(f.value(timeout=20) for f in futures) == [str(i) for i in range(6)]


def test_sigterm_hands_back_jobs_still_running_at_the_graceful_timeout(start_worker, redis_client):
    worker = start_worker("tests.apps.jobs:worker", "--graceful-timeout", "0.3")
    future = jobs.waits_for_gate.submit("long")  # still running at the timeout however slow the machine
    wait_for(lambda: gate_passers(redis_client), message="long job running")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert "jobs_handed_back" in worker.output()
    assert future.status() == "queued"
    redis_client.set("gate", 1)
    start_worker("tests.apps.jobs:worker")
    result = future.result(timeout=20)
    assert result.value == "long" and result.attempts == 1


def test_a_job_that_kills_its_worker_is_failed_after_max_deliveries(start_worker, redis_client):
    env = {**FAST_RECLAIM, "UPNEXT_MAX_DELIVERIES": "2"}
    start_worker("tests.apps.jobs:worker", "--processes", "2", env=env)
    future = jobs.kills_its_worker.submit()
    with pytest.raises(upnext.TaskExecutionError) as info:
        future.result(timeout=40)
    assert "max_deliveries=2" in info.value.error and info.value.task_result.failure_reason == "lost"
    assert len(ledger(redis_client, "kills_its_worker")) == 2
    # The restarted children serve normally once the poison job is out of the way.
    normal = [jobs.add.submit(i, i) for i in range(10)]
    assert [f.value(timeout=20) for f in normal] == [2 * i for i in range(10)]


def test_processes_runs_children_and_restarts_a_killed_one(start_worker, redis_client):
    parent = start_worker("tests.apps.jobs:worker", "--processes", "2", registered=2)

    def child_pids():
        ids = parent.worker_ids(redis_client)
        return {json.loads(redis_client.get(keys.worker("upnext", w)))["pid"] for w in ids}

    def two(pids):
        return pids if len(pids) == 2 else None

    before = wait_for(lambda: two(child_pids()), message="two children")
    assert parent.pid not in before
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: two(child_pids() - {victim}), timeout=20, message="a replacement child")
    assert jobs.add.wait(1, 2, wait_timeout=10).value == 3


def test_max_jobs_per_child_recycles_the_process(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker", "--max-jobs-per-child", "4")
    for i in range(10):
        assert jobs.sleep_for.submit(0, str(i)).value(timeout=20) == str(i)
    pids = [r["pid"] for r in ledger(redis_client, "sleep_for") if r["phase"] == "start"]
    assert len(set(pids)) >= 3, pids


def test_ttin_ttou_and_hup_scale_and_roll_the_children(start_worker, redis_client, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("concurrency = 3\n")
    parent = start_worker("tests.apps.jobs:worker", "--processes", "2", "-c", str(conf), registered=2)

    def workers():
        return [json.loads(redis_client.get(keys.worker("upnext", w)) or "null")
                for w in parent.worker_ids(redis_client)]

    parent.signal(signal.SIGTTIN)
    wait_for(lambda: len(workers()) == 3, timeout=20, message="a third child")
    parent.signal(signal.SIGTTOU)
    wait_for(lambda: len(workers()) == 2, timeout=20, message="back to two children")
    before = {w["pid"] for w in workers()}
    conf.write_text("concurrency = 7\nprocesses = 2\n")
    parent.signal(signal.SIGHUP)
    wait_for(lambda: (ws := workers()) and len(ws) == 2 and {w["pid"] for w in ws}.isdisjoint(before)
             and all(w["concurrency"] == 7 for w in ws), timeout=30, message="two new children with the new config")


def test_a_second_sigterm_stops_at_once(start_worker, redis_client):
    worker = start_worker("tests.apps.jobs:worker", "--graceful-timeout", "60")
    future = jobs.sleep_for.submit(30, "long")
    wait_for(lambda: started_tags(redis_client), message="the long job running")
    worker.signal(signal.SIGTERM)
    wait_for(lambda: "worker_draining" in worker.output(), message="the first TERM to start a drain")
    worker.signal(signal.SIGTERM)
    worker.wait(10)  # far less than the 30 s job or the 60 s graceful timeout
    assert future.status() == "queued"  # handed back for another worker
