"""``task.wait()``'s notify list (store/waiter.py): the job is written with its ``notify`` mark,
every way a job ends pushes its record onto the list, and the wait pops it: no subscription,
nothing left behind."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import upnext
from tests.apps import jobs
from tests.workers import wait_for
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.records import Completion, NewJob


def calls(client, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_wait_pops_the_pushed_record_and_subscribes_to_nothing(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker")
    subscribes = calls(redis_client, "subscribe")
    result = jobs.add.wait(2, 3, wait_timeout=30)
    assert result.value == 5
    assert calls(redis_client, "subscribe") == subscribes
    assert redis_client.hget(keys.job("upnext", result.job_id), "notify") == "1"
    assert not redis_client.exists(keys.notify("upnext", result.job_id))  # popped: nothing left behind


def test_a_submitted_job_has_no_mark_and_its_end_fills_no_list(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker")
    future = jobs.add.submit(1, 1)
    assert future.value(timeout=30) == 2
    assert redis_client.hget(keys.job("upnext", future.job_id), "notify") is None
    assert not redis_client.exists(keys.notify("upnext", future.job_id))


def _marked(queue, function: str = "fn", **fields) -> str:
    job_id = new_job_id(function)
    queue.enqueue_many([NewJob(job_id, "[]", "{}", notify=True, **fields)])
    return job_id


def _pushed(client, job_id: str) -> list[dict[str, str]]:
    flat = [json.loads(m) for m in client.lrange(keys.notify("upnext", job_id), 0, -1)]
    return [dict(zip(f[::2], f[1::2])) for f in flat]


def test_every_end_pushes_the_record_of_a_marked_job(queue, redis_client):
    """finish.lua, cancel.lua, purge.lua and start.lua's expiry: each way a job can end."""
    finished, cancelled, purged = _marked(queue), _marked(queue), _marked(queue, "other")
    expired = _marked(queue, "late", expires_s=0.001)
    ((delivery, _),) = queue.take("w1", "w1", {"fn": 1})
    assert delivery.job_id == finished
    queue.settle("w1", [Completion(delivery, "complete", result="7")])
    queue.cancel(cancelled)
    assert Admin(queue).purge("other") == 1
    # Take it only once Redis's clock is past its expiry: a take before would start it (the calls
    # above can take less than its 1 ms on a quick machine).
    expires_at = float(redis_client.hget(keys.job("upnext", expired), "expires_at"))
    wait_for(lambda: queue.redis_time() > expires_at, message="the expiry")
    assert [r[0] for _, r in queue.take("w1", "w1", {"late": 1})] == ["expired"]
    assert [(r["status"], r.get("result")) for r in _pushed(redis_client, finished)] == [("complete", "7")]
    for job_id in (cancelled, purged, expired):
        assert [r["status"] for r in _pushed(redis_client, job_id)] == ["cancelled"], job_id
    assert redis_client.ttl(keys.notify("upnext", finished)) > 0  # a list nobody pops expires with its job


def test_an_unmarked_job_fills_no_list(queue, redis_client):
    job_id = queue.enqueue(NewJob(new_job_id("fn"), "[]", "{}"))
    ((delivery, _),) = queue.take("w1", "w1", {"fn": 1})
    queue.settle("w1", [Completion(delivery, "complete", result="null")])
    assert queue.get(job_id)["status"] == "complete" and not redis_client.exists(keys.notify("upnext", job_id))


def test_a_cancel_ends_a_wait_on_a_running_job(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker")
    outcome: dict[str, Any] = {}

    def wait() -> None:
        try:
            jobs.waits_for_cancel.wait(60.0, wait_timeout=60)
        except upnext.TaskExecutionError as exc:
            outcome["status"] = exc.status
    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    wait_for(lambda: redis_client.llen("ledger:waits_for_cancel") == 1, timeout=30, message="the job to start")
    (job_id,) = [k.split(":job:", 1)[1] for k in redis_client.keys("upnext:{waits_for_cancel}:job:*")]
    assert upnext.Future(job_id, jobs.worker.queue).cancel()
    thread.join(timeout=30)
    assert outcome == {"status": "cancelled"}


def test_a_wait_with_no_worker_times_out_and_names_the_job(redis_client):
    with pytest.raises(TimeoutError, match=r"job add:[0-9a-f]+ did not finish within 0.3s \(status: queued\)"):
        jobs.add.wait(1, 2, wait_timeout=0.3)
