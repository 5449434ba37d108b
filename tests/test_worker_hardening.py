"""Worker-process defects of the hardening issue: what dead workers leave in Redis, and a
worker whose clock is off."""

from __future__ import annotations

import signal
import time

from tests.apps import jobs
from tests.workers import wait_for
from upnext.store import keys
from upnext.store.records import Completion

FAST = {"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "500"}  # dead consumers swept after 5 s idle


def consumers(client, function: str) -> set[str]:
    return {c["name"] for c in client.xinfo_consumers(keys.stream("upnext", function), keys.GROUP)}


def test_live_workers_remove_the_consumers_ids_and_records_of_dead_workers(start_worker, redis_client):
    doomed = start_worker("tests.apps.jobs:worker", env=FAST)
    (dead_id,) = doomed.worker_ids(redis_client)
    assert jobs.add.wait(1, 1, wait_timeout=10).value == 2  # its consumer now exists in the group
    assert dead_id in consumers(redis_client, "add")
    start_worker("tests.apps.jobs:worker", env=FAST)
    doomed.signal(signal.SIGKILL)
    doomed.wait(10)
    wait_for(lambda: dead_id not in consumers(redis_client, "add"), timeout=30,
             message="the dead worker's consumer to be swept")
    wait_for(lambda: dead_id not in redis_client.smembers(keys.worker_ids("upnext")), timeout=30,
             message="the dead worker's id to be swept")
    wait_for(lambda: not redis_client.hexists(keys.last_seen("upnext"), dead_id), timeout=30,
             message="the dead worker's last record (shown by status as dead) to be swept")
    assert jobs.add.wait(1, 2, wait_timeout=10).value == 3  # the live worker serves on


def test_a_consumer_holding_an_entry_is_never_swept(queue, redis_client):
    queue.enqueue_many([jobs.add.new_job((1, 2), {}) for _ in range(2)])
    queue.take("holder", "holder", {"add": 1})
    ((done, _),) = queue.take("finished", "finished", {"add": 1})
    queue.settle("finished", [Completion(done, "complete", result="3")])
    assert queue.registry.sweep_consumers(["add"], 0) == ["finished"]
    assert consumers(redis_client, "add") == {"holder"}


def promote_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_worker_whose_clock_runs_ahead_neither_spins_nor_runs_jobs_early(start_worker, redis_client):
    later = jobs.add.options(delay=3600).submit(2, 2)  # something scheduled: the promote loop's next wake-up
    start_worker("tests.apps.skewed:worker")
    before, began = promote_calls(redis_client), time.monotonic()
    assert jobs.add.wait(1, 1, wait_timeout=10).value == 2
    wait_for(lambda: time.monotonic() - began > 2, message="two seconds of an idle worker")
    per_s = (promote_calls(redis_client) - before) / (time.monotonic() - began)
    functions = len(jobs.worker.tasks) + len(jobs.worker.crons)
    # promote calls every task once per wake-up: at most every 0.5 s when idle, not every 5 ms
    print(f"skewed clock: {per_s:.0f} script calls/s for {functions} functions")
    assert per_s < 10 * functions, f"{per_s:.0f} script calls/s for {functions} functions"
    assert later.status() == "queued"
