"""Chaos scenarios inside one worker: a job blocking the hub, and bad input of every kind."""

from __future__ import annotations

import json

import pytest

import upnext
from tests.apps import jobs
from tests.workers import wait_for
from upnext.future import Future
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.records import NewJob

pytestmark = pytest.mark.chaos
FAST_RECLAIM = {"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1000"}


def ledger(client, name):
    return [json.loads(x) for x in client.lrange(f"ledger:{name}", 0, -1)]


def test_a_job_blocking_the_hub_past_the_claim_timeout_is_logged_and_not_run_twice(start_worker, redis_client):
    env = {**FAST_RECLAIM, "UPNEXT_HUB_MAX_BLOCKING_MS": "200"}
    blocker = start_worker("tests.apps.jobs:worker", env=env)
    future = jobs.burns_cpu.submit(2.5)
    wait_for(lambda: ledger(redis_client, "burns_cpu"), message="the CPU job started")
    start_worker("tests.apps.jobs:worker", env=env)  # would reclaim it, were its entry left idle
    assert future.value(timeout=30) == "burnt"
    assert len(ledger(redis_client, "burns_cpu")) == 1
    wait_for(lambda: "hub_blocked" in blocker.output(), message="the blocking to be logged")
    assert f"job_id={future.job_id}" in blocker.output()


def test_garbage_entries_and_undecodable_payloads_fail_clearly_and_the_worker_keeps_running(
        start_worker, redis_client, queue):
    worker = start_worker("tests.apps.jobs:worker")
    stream = keys.stream("upnext", "add")
    redis_client.xadd(stream, {"junk": "1"})                      # no job id at all
    redis_client.xadd(stream, {"id": "sleep_for:0123456789"})     # a job of another task
    # Written corrupt from the start: no worker can see the job with good arguments first.
    bad = Future(queue.enqueue(NewJob(new_job_id("add"), "{not json", "{}")), queue)
    with pytest.raises(upnext.TaskExecutionError, match="not valid JSON"):
        bad.result(timeout=10)
    assert jobs.add.wait(2, 2, wait_timeout=10).value == 4
    wait_for(lambda: redis_client.xlen(stream) == 0, message="garbage acked away")
    assert worker.output().count("entry_dropped") == 2


def test_a_payload_over_max_payload_bytes_is_refused_at_submit(redis_client):
    with pytest.raises(ValueError, match="add\\(\\): arguments are .* over max_payload_bytes=1048576"):
        jobs.add.submit("x" * 2_000_000, "y")
    assert redis_client.dbsize() == 0
