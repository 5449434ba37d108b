"""Back-pressure (SPEC §2c): ``@worker.task(max_queued=N, on_full="reject"|"block")``. A submit
that would leave more than N jobs waiting (stream entries not yet delivered + scheduled jobs)
raises upnext.QueueFull or polls for room; enqueue.lua checks and writes in one atomic step."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

import upnext
from tests.apps.queueing import bounded_block
from tests.workers import ROOT, wait_for
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.records import NewJob
from upnext.task import build_job

APP = "tests.apps.queueing:worker"
web = upnext.Worker("web")


@web.task(max_queued=3)
def bounded(n: int) -> int:
    return n


@web.task(max_queued=2, on_full="block", on_full_timeout=0.3)
def brief(n: int) -> int:
    return n


def queued(client, function: str) -> int:
    """What the cap counts: stream entries not delivered yet + scheduled jobs."""
    stream = keys.stream("upnext", function)
    pending = client.xpending(stream, keys.GROUP)["pending"] if client.exists(stream) else 0
    return client.xlen(stream) - pending + client.zcard(keys.scheduled("upnext", function))


def test_a_full_queue_refuses_a_submit_naming_the_task_the_limit_and_the_count(redis_client):
    bounded.submit(1)
    bounded.options(delay=3600).submit(2)  # scheduled jobs count: they will be waiting too
    bounded.submit_idempotent("k", 3)
    with pytest.raises(upnext.QueueFull, match=r"task 'bounded' is full: 3 jobs queued .* max_queued=3") as full:
        bounded.submit(4)
    assert isinstance(full.value, upnext.UpnextError) and (full.value.limit, full.value.count) == (3, 3)
    assert bounded.submit_idempotent("k", 3).job_id  # a live duplicate adds nothing: no refusal
    assert queued(redis_client, "bounded") == 3


def test_running_jobs_do_not_count_and_a_start_makes_room(queue, redis_client):
    bounded.submit(1), bounded.submit(2), bounded.submit(3)
    ((_, reply),) = queue.take("w1", "w1", {"bounded": 1})
    assert reply[0] == "run" and queued(redis_client, "bounded") == 2
    bounded.submit(4)
    with pytest.raises(upnext.QueueFull):
        bounded.submit(5)


def test_submit_many_writes_all_or_none_of_its_jobs(redis_client):
    bounded.submit(0)
    with pytest.raises(upnext.QueueFull, match="1 jobs queued"):
        upnext.submit_many(bounded, [{"n": i} for i in range(3)])
    assert queued(redis_client, "bounded") == 1 and len(redis_client.keys("upnext:{bounded}:job:*")) == 1
    assert len(upnext.submit_many(bounded, [{"n": i} for i in range(2)])) == 2
    with pytest.raises(upnext.QueueFull, match="a batch of 3 jobs can never fit under max_queued=2"):
        upnext.submit_many(brief, [{"n": i} for i in range(3)])  # blocking could never help


def test_concurrent_producers_never_overshoot_the_cap(redis_client):
    accepted, refused = [], []

    def produce() -> None:
        for i in range(5):
            try:
                accepted.append(bounded.submit(i))
            except upnext.QueueFull:
                refused.append(i)

    producers = [threading.Thread(target=produce) for _ in range(8)]
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join(60)
    assert (len(accepted), len(refused)) == (3, 37)
    assert queued(redis_client, "bounded") == 3


def test_on_full_block_waits_up_to_its_timeout_then_raises(redis_client):
    brief.submit(1), brief.submit(2)
    began = time.monotonic()
    with pytest.raises(upnext.QueueFull, match=r"still full after waiting 0.3s \(on_full='block'"):
        brief.submit(3)
    assert time.monotonic() - began >= 0.3
    assert queued(redis_client, "brief") == 2


def test_on_full_block_submits_once_a_worker_makes_room(redis_client, start_worker):
    first, second = bounded_block.submit("a"), bounded_block.submit("b")
    blocked: list[upnext.Future] = []
    calls = _script_calls(redis_client)
    producer = threading.Thread(target=lambda: blocked.append(bounded_block.submit("c")))
    producer.start()
    wait_for(lambda: _script_calls(redis_client) >= calls + 3, message="the producer polling a full queue")
    assert producer.is_alive() and not blocked and queued(redis_client, "bounded_block") == 2
    start_worker(APP)
    producer.join(60)
    (third,) = blocked
    assert [f.value(timeout=60) for f in (first, second, third)] == ["a", "b", "c"]


def _script_calls(client) -> int:
    """Lua calls Redis has served: a blocked producer's enqueue.lua attempts (no worker runs yet)."""
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_producer_that_knows_the_task_only_by_name_uses_the_registered_cap(queue):
    options = {"max_queued": 1, "on_full": "reject", "on_full_timeout": 30}
    queue.registry.register("w1", json.dumps({"id": "w1"}), 60, {"by_name": json.dumps(options)})
    queue.enqueue(build_job("by_name", "[]", "{}"))
    with pytest.raises(upnext.QueueFull, match="'by_name' is full"):
        queue.enqueue(build_job("by_name", "[]", "{}"))
    queue.enqueue(NewJob(new_job_id("uncapped"), "[]", "{}"))  # nothing registered: no cap
    queue.enqueue(NewJob(new_job_id("uncapped"), "[]", "{}"))
    called = subprocess.run([sys.executable, "-m", "upnext.cli", "call", "by_name"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert called.returncode == 1 and "Error: queue of task 'by_name' is full: 1 jobs queued" in called.stderr


@pytest.mark.parametrize(("option", "value", "message"), [
    ("max_queued", 0, "max_queued must be an integer >= 1"), ("max_queued", "10", "max_queued must be"),
    ("on_full", "drop", "on_full must be one of 'reject', 'block'"),
    ("on_full_timeout", -1, "on_full_timeout must be a number of seconds >= 0")])
def test_bad_back_pressure_options_are_refused_at_decoration(option, value, message):
    with pytest.raises(ValueError, match=f"task 'nope': {message}"):
        upnext.Worker("decorated").task(name="nope", **{option: value})(lambda: None)
