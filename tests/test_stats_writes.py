"""Stats written by the finishing Lua calls (finish, retry, cancel, purge), on the real server:
counts per minute, the run and wait histograms' buckets, the setting that turns them off, and one
run through a real worker process."""

from __future__ import annotations

import time

import pytest

import upnext
from tests.apps import jobs
from tests.test_queue import F, P, done, enqueue, take
from tests.workers import wait_for
from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.queue import Queue

COUNTS = ("completed", "failed", "cancelled", "retried")


def minutes_sum(client, function: str, since: float) -> dict[str, float]:
    """The minute hashes from ``since`` to now, summed (a test may cross a minute boundary)."""
    total: dict[str, float] = {}
    for minute in range(int(since) // 60, int(time.time()) // 60 + 1):
        for field, value in client.hgetall(keys.stats_minute(P, function, minute)).items():
            total[field] = total.get(field, 0) + float(value)
    return total


def test_keys_buckets_match_the_lua_bounds():
    lib = (keys.__file__.rsplit("/", 1)[0] + "/lua/_lib.lua")
    line = next(x for x in open(lib) if x.startswith("local STAT_BOUNDS"))
    bounds = [float(v) for v in line[line.index("{") + 1: line.index("}")].split(",")]
    assert (*bounds, float("inf")) == keys.STAT_BUCKETS_S
    assert [keys.stat_bucket(s) for s in (0, 0.005, 0.0051, 0.05, 2, 1800, 1801)] == [0, 0, 1, 3, 8, 14, 15]


def test_counts_per_minute_match_what_ran(queue, redis_client):
    since = time.time()
    ids = [enqueue(queue) for _ in range(8)]
    outcomes = ["complete", "complete", "complete", "failed", "failed", "retry"]
    for outcome in outcomes:
        delivery, _ = take(queue)
        fields = {"delay_s": 60} if outcome == "retry" else {}
        assert queue.settle("c1", [done(delivery, outcome, run_s=0.01, **fields)]) == ["ok"]
    assert queue.cancel(ids[6])[0] == "cancelled"
    assert Admin(queue).purge(F) == 2  # the last queued job and the retrying one
    expected = {"completed": 3, "failed": 2, "retried": 1, "cancelled": 3}
    minute = minutes_sum(redis_client, F, since)
    assert {name: int(minute.get(name, 0)) for name in COUNTS} == expected
    total = redis_client.hgetall(keys.stats_total(P, F))
    assert {name: int(total.get(name, 0)) for name in COUNTS} == expected
    hour = redis_client.hgetall(keys.stats_hour(P, F, int(time.time()) // 3600))
    assert int(hour["completed"]) == 3
    assert int(minute["run_n"]) == 6 and minute["run_sum"] == pytest.approx(0.06)
    assert int(minute["wait_n"]) == 6
    minute_key = keys.stats_minute(P, F, int(time.time()) // 60)
    assert 0 < redis_client.ttl(minute_key) <= keys.STATS_MINUTE_TTL_S
    assert redis_client.ttl(keys.stats_total(P, F)) == -1


def test_a_50_ms_run_and_a_2_s_run_land_in_their_buckets(queue, redis_client):
    since = time.time()
    for run_s in (0.05, 2.0):
        enqueue(queue)
        delivery, _ = take(queue)
        queue.settle("c1", [done(delivery, run_s=run_s)])
    minute = minutes_sum(redis_client, F, since)
    runs = {field: int(v) for field, v in minute.items() if field.startswith("run_") and field[4:].isdigit()}
    assert runs == {"run_3": 1, "run_8": 1}, "0.05 s: bound 0.05 (index 3); 2 s: bound 2.5 (index 8)"


def test_the_queue_wait_counts_from_the_due_time_not_from_the_submit(queue, redis_client):
    since = time.time()
    job_id = enqueue(queue, delay_s=30)
    # submitted 10 s ago with a delay, due 3 s ago: it waited 3 s, not 10
    redis_client.hset(keys.job(P, job_id), mapping={"enqueued_at": time.time() - 10, "run_at": time.time() - 3})
    redis_client.zadd(keys.scheduled(P, F), {job_id: 0})
    queue.promote(F)
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, run_s=0.001)])
    minute = minutes_sum(redis_client, F, since)
    assert int(minute["wait_9"]) == 1, minute  # 3 s waited: bound 5 (index 9)
    assert minute["wait_sum"] == pytest.approx(3, abs=1)


def test_a_run_of_unknown_length_counts_but_adds_no_times(queue, redis_client):
    since = time.time()
    enqueue(queue)
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, "failed", failure_reason="lost")])
    minute = minutes_sum(redis_client, F, since)
    assert int(minute["failed"]) == 1 and "run_n" not in minute and "wait_n" not in minute


def test_the_stats_setting_off_writes_no_stats_key(redis_client):
    queue = Queue(redis_client, P, stats=False)
    ids = [enqueue(queue) for _ in range(3)]
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, run_s=0.1)])
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, "retry", run_s=0.1)])
    queue.cancel(ids[2])
    assert not redis_client.keys("*:stats:*")


def test_a_real_worker_writes_the_runs_it_ended(start_worker, redis_client):
    since = time.time()
    start_worker("tests.apps.jobs:worker", "--concurrency", "4")
    futures = [jobs.sleep_for.submit(0.05, tag="short"), jobs.sleep_for.submit(2.0, tag="long"),
               jobs.fails_until.submit(2)]
    for future in futures:
        future.result(timeout=30)
    sleeps = minutes_sum(redis_client, "sleep_for", since)
    assert int(sleeps["completed"]) == 2 and int(sleeps["run_n"]) == 2
    assert int(sleeps.get("run_3", 0)) + int(sleeps.get("run_4", 0)) == 1, sleeps  # 50 ms (+ a little)
    assert int(sleeps["run_8"]) == 1, sleeps
    retried = wait_for(lambda: minutes_sum(redis_client, "fails_until", since), message="the retry's stats")
    assert (int(retried["retried"]), int(retried["completed"]), int(retried["run_n"])) == (1, 1, 2)


def test_a_worker_started_with_stats_off_and_a_short_completed_ttl_follows_both(start_worker, redis_client):
    env = {"UPNEXT_STATS": "false", "UPNEXT_QUEUE_COMPLETED_TTL_SECONDS": "60"}
    start_worker("tests.apps.jobs:worker", env=env)
    done_ok = jobs.add.submit(1, 2)
    done_ok.result(timeout=20)
    failed = jobs.needs_the_flag.submit()
    wait_for(lambda: failed.status() == "failed", message="the job to fail")
    assert 0 < redis_client.ttl(keys.job(P, done_ok.job_id)) <= 60
    assert 60 < redis_client.ttl(keys.job(P, failed.job_id)) <= 86400  # failed jobs keep job_ttl_seconds
    assert not redis_client.keys("*:stats:*")


def test_worker_settings_reach_the_queue():
    queue = upnext.Worker("t", completed_ttl_seconds=30, stats=False, redis_url="redis://127.0.0.1:1/0").queue
    assert (queue.completed_ttl_s, queue.job_ttl_s, queue.stats) == (30, 86400, False)
