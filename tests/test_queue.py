"""Queue semantics on the real server: every Lua script, fencing, TTLs, trimming, groups."""

from __future__ import annotations

import threading

import pytest

from tests.workers import wait_for
from upnext import keys
from upnext.job import new_job_id
from upnext.queue import Completion, NewJob, Queue

F = "task_a"


def enqueue(queue: Queue, delay_s: float = 0.0, key: str = "") -> str:
    return queue.enqueue(NewJob(new_job_id(F), "[]", "{}", delay_s=delay_s, key=key))


def take(queue: Queue, consumer: str = "c1"):
    (delivery,) = queue.fetch(consumer, [F], 1, None)
    (reply,) = queue.start(consumer, consumer, [delivery])
    return delivery, reply


def job(redis_client, job_id):
    return redis_client.hgetall(keys.job("upnext", job_id))


def test_enqueue_writes_a_queued_record_without_ttl_and_one_stream_entry(queue, redis_client):
    job_id = enqueue(queue)
    record = job(redis_client, job_id)
    assert record["status"] == "queued" and record["attempts"] == "0" and record["root_id"] == job_id
    assert redis_client.ttl(keys.job("upnext", job_id)) == -1
    assert redis_client.xlen(keys.stream("upnext", F)) == 1


def test_delayed_job_waits_in_the_zset_and_is_promoted_exactly_once_when_due(queue, redis_client):
    late = enqueue(queue, delay_s=3600)
    due = enqueue(queue, delay_s=0.001)
    redis_client.zadd(keys.scheduled("upnext", F), {due: 0})
    moved, next_at = queue.promote(F)
    assert moved == 1 and next_at == pytest.approx(float(job(redis_client, late)["run_at"]))
    assert queue.promote(F)[0] == 0
    assert [d.job_id for d in queue.fetch("c1", [F], 10, None)] == [due]
    assert redis_client.ttl(keys.job("upnext", late)) == -1


def test_start_marks_the_job_active_and_counts_the_attempt(queue, redis_client):
    job_id = enqueue(queue)
    delivery, reply = take(queue)
    assert reply[0] == "run" and reply[1] == 1 and delivery.job_id == job_id
    record = job(redis_client, job_id)
    assert record["status"] == "active" and record["worker"] == "c1" and record["lease"] == delivery.entry_id


def test_finish_writes_the_outcome_acks_trims_and_applies_the_ttl(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.done_channel("upnext", job_id))
    assert queue.settle("c1", [Completion(delivery, "complete", result="42")]) == ["ok"]
    record = job(redis_client, job_id)
    assert record["status"] == "complete" and record["result"] == "42"
    assert 0 < redis_client.ttl(keys.job("upnext", job_id)) <= 86400
    assert redis_client.xlen(keys.stream("upnext", F)) == 0
    assert redis_client.xpending(keys.stream("upnext", F), keys.GROUP)["pending"] == 0
    messages = [pubsub.get_message(timeout=1) for _ in range(2)]
    assert any(m and m["data"] == "complete" for m in messages)


def test_a_reclaimed_delivery_is_fenced_off_from_finishing_or_retrying(queue, redis_client):
    job_id = enqueue(queue)
    stale, _ = take(queue, "c1")
    (fresh,) = queue.reclaim("c2", F, 0, 10)
    assert queue.start("c2", "c2", [fresh])[0][0] == "run"
    assert queue.settle("c1", [Completion(stale, "complete", result="1")]) == ["stale"]
    assert queue.settle("c1", [Completion(stale, "retry", delay_s=0)]) == ["stale"]
    assert job(redis_client, job_id)["status"] == "active"
    assert queue.settle("c2", [Completion(fresh, "complete", result="2")]) == ["ok"]
    assert job(redis_client, job_id)["result"] == "2"


def test_start_of_an_entry_another_consumer_holds_is_stale(queue):
    enqueue(queue)
    (delivery,) = queue.fetch("c1", [F], 1, None)
    assert queue.start("c2", "c2", [delivery]) == [["stale"]]


def test_a_terminal_job_is_never_overwritten_and_its_redelivery_is_acked_unrun(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    assert queue.cancel(job_id) == ("cancelled", "active")
    assert queue.settle("c1", [Completion(delivery, "complete", result="1")]) == ["terminal"]
    assert job(redis_client, job_id)["status"] == "cancelled"
    queued = enqueue(queue)
    assert queue.cancel(queued)[0] == "cancelled"
    _, reply = take(queue)
    assert reply == ["terminal", "cancelled"]
    assert redis_client.xlen(keys.stream("upnext", F)) == 0


def test_retry_reschedules_without_ttl_and_resets_nothing_it_should_keep(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    reply = queue.settle("c1", [Completion(delivery, "retry", error="boom", failure_reason="exception",
                                           delay_s=60)])
    assert reply == ["ok"]
    record = job(redis_client, job_id)
    assert record["status"] == "retrying" and record["error"] == "boom" and record["attempts"] == "1"
    assert redis_client.zscore(keys.scheduled("upnext", F), job_id) is not None
    assert redis_client.ttl(keys.job("upnext", job_id)) == -1
    redis_client.zadd(keys.scheduled("upnext", F), {job_id: 0})
    queue.promote(F)
    _, reply = take(queue)
    assert reply[1] == 2 and job(redis_client, job_id)["failure_reason"] == ""


def test_poison_reply_after_max_deliveries(redis_client):
    queue = Queue(redis_client, max_deliveries=2)
    enqueue(queue)
    queue.fetch("c1", [F], 1, None)
    queue.reclaim("c2", F, 0, 1)
    (delivery,) = queue.reclaim("c3", F, 0, 1)
    assert queue.start("c3", "c3", [delivery]) == [["poison", 3, ""]]


def test_idempotency_key_returns_the_live_job_and_is_freed_at_the_end(queue, redis_client):
    first = enqueue(queue, key="k")
    assert enqueue(queue, key="k") == first
    assert redis_client.xlen(keys.stream("upnext", F)) == 1
    delivery, _ = take(queue)
    queue.settle("c1", [Completion(delivery, "complete", result="null", idem_key="k")])
    assert enqueue(queue, key="k") != first


def test_release_hands_a_job_back_and_returns_its_attempt(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    assert queue.release("c1", [delivery], started=True) == ["ok"]
    assert job(redis_client, job_id)["status"] == "queued" and job(redis_client, job_id)["attempts"] == "0"
    assert queue.fetch("c2", [F], 1, None)[0].job_id == job_id


def test_touch_keeps_a_running_entry_from_being_reclaimed(queue, redis_client):
    enqueue(queue)
    delivery, _ = take(queue)
    stream = keys.stream("upnext", F)

    def idle_ms():
        return redis_client.xpending_range(stream, keys.GROUP, "-", "+", 1)[0]["time_since_delivered"]

    wait_for(lambda: idle_ms() >= 60, message="the entry to go idle")
    queue.touch("c1", [delivery])
    assert idle_ms() < 60
    assert queue.reclaim("c2", F, 60, 10) == []


def test_annotate_writes_only_while_active(queue, redis_client):
    job_id = enqueue(queue)
    assert queue.annotate(job_id, progress=0.5) is False
    delivery, _ = take(queue)
    assert queue.annotate(job_id, "{\"m\": 1}", progress=0.5) is True
    queue.settle("c1", [Completion(delivery, "complete", result="1")])
    assert queue.annotate(job_id, progress=0.9) is False
    assert job(redis_client, job_id)["progress"] == "0.5" and queue.logs(job_id) == ["{\"m\": 1}"]


def test_wait_wakes_on_finish_and_returns_the_last_record_on_timeout(queue):
    job_id = enqueue(queue)
    assert queue.wait(job_id, 0.05)["status"] == "queued"
    delivery, _ = take(queue)
    timer = threading.Timer(0.1, lambda: queue.settle("c1", [Completion(delivery, "complete", result="7")]))
    timer.start()
    assert queue.wait(job_id, 10)["result"] == "7"
    timer.join()


def test_groups_come_back_after_flushall_for_submitters_and_workers(queue, redis_client):
    enqueue(queue)
    redis_client.flushall()
    assert queue.fetch("c1", [F], 1, None) == []
    job_id = enqueue(queue)
    assert queue.fetch("c1", [F], 1, None)[0].job_id == job_id


def test_consumer_with_pending_entries_is_never_deleted(queue, redis_client):
    enqueue(queue)
    take(queue, "c1")
    queue.forget_consumer("c1", [F])
    consumers = redis_client.xinfo_consumers(keys.stream("upnext", F), keys.GROUP)
    assert [c["name"] for c in consumers] == ["c1"]


def test_pipelined_scripts_survive_a_script_cache_flush(queue, redis_client):
    first = enqueue(queue)
    redis_client.script_flush()
    second, third = queue.enqueue_many([NewJob(new_job_id(F), "[]", "{}"), NewJob(new_job_id(F), "[]", "{}")])
    assert len({first, second, third}) == 3
    assert redis_client.xlen(keys.stream("upnext", F)) == 3
    redis_client.script_flush()
    delivery, reply = take(queue)
    assert reply[0] == "run"
    redis_client.script_flush()
    assert queue.settle("c1", [Completion(delivery, "complete", result="1")]) == ["ok"]
