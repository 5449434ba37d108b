"""Queue semantics on the real server, through the Queue class: every Lua script, fencing,
TTLs, idempotency, groups that come back after a FLUSHALL.

Consumers are plain names ("c1", "c2"); the worker id written into records is "w1".
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.workers import wait_for
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.limits import Limits
from upnext.store.queue import Queue
from upnext.store.records import Completion, Delivery, NewJob

P = "upnext"
F = "task_a"
G = "task_b"


# -- helpers -------------------------------------------------------------------------------
def enqueue(queue: Queue, delay_s: float = 0.0, key: str = "", function: str = F, args: str = "[]",
            kwargs: str = "{}") -> str:
    return queue.enqueue(NewJob(new_job_id(function), args, kwargs, delay_s=delay_s, key=key))


def take(queue: Queue, consumer: str = "c1", function: str = F) -> tuple[Delivery, list]:
    """Fetch one entry and start it, as a worker does."""
    (delivery,) = queue.fetch(consumer, [function], 1, None)
    (reply,) = queue.start(consumer, "w1", [delivery])
    return delivery, reply


def done(delivery: Delivery, status: str = "complete", **fields) -> Completion:
    return Completion(delivery, status, **{"result": "null", **fields})


def record(client, job_id: str) -> dict[str, str]:
    return client.hgetall(keys.job(P, job_id))


def ttl(client, job_id: str) -> int:
    return client.ttl(keys.job(P, job_id))


def stream_ids(client, function: str = F) -> list[str]:
    """Job ids of the entries in the stream, oldest first."""
    return [fields["id"] for _, fields in client.xrange(keys.stream(P, function))]


def pending(client, function: str = F) -> list[dict]:
    return client.xpending_range(keys.stream(P, function), keys.GROUP, "-", "+", 100)


def reclaim_all(queue: Queue, consumer: str, function: str = F) -> list[Delivery]:
    return queue.reclaim(consumer, function, min_idle_ms=0, count=10)


def make_due(client, job_id: str) -> None:
    client.zadd(keys.scheduled(P, job_id.split(":")[0]), {job_id: 0}, xx=True)


# -- enqueue -------------------------------------------------------------------------------
def test_enqueue_now_adds_one_stream_entry_and_a_queued_record_with_no_attempts(queue, redis_client):
    job_id = queue.enqueue(NewJob(new_job_id(F), "[1]", '{"a":2}', parent_id="p:1", root_id="r:1"))
    assert stream_ids(redis_client) == [job_id]
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["attempts"], rec["args"], rec["kwargs"]) == ("queued", "0", "[1]", '{"a":2}')
    assert (rec["parent_id"], rec["root_id"]) == ("p:1", "r:1")
    assert float(rec["enqueued_at"]) == pytest.approx(time.time(), abs=5)
    assert "function" not in rec and "run_at" not in rec, "its id names the function; due at once: no run_at"
    assert redis_client.zcard(keys.scheduled(P, F)) == 0


def test_a_job_enqueued_without_a_root_stores_no_empty_lineage_fields(queue, redis_client):
    job_id = enqueue(queue)
    stored = record(redis_client, job_id)
    assert not {"root_id", "parent_id", "key"} & set(stored), "its own root and no key are absent fields"
    assert "" not in stored.values()


def test_enqueue_with_a_delay_schedules_the_job_in_the_zset_not_the_stream(queue, redis_client):
    job_id = enqueue(queue, delay_s=60)
    run_at = redis_client.zscore(keys.scheduled(P, F), job_id)
    assert run_at == pytest.approx(time.time() + 60, abs=5)
    assert float(record(redis_client, job_id)["run_at"]) == pytest.approx(run_at)
    assert record(redis_client, job_id)["status"] == "queued"
    assert redis_client.xlen(keys.stream(P, F)) == 0


def test_enqueue_with_a_live_idempotency_key_returns_the_live_job_and_writes_nothing(queue, redis_client):
    first = enqueue(queue, key="order-1")
    second_id = new_job_id(F)
    assert queue.enqueue(NewJob(second_id, "[]", "{}", key="order-1")) == first
    assert queue.enqueue(NewJob(new_job_id(F), "[]", "{}", key="order-1", delay_s=60)) == first
    assert stream_ids(redis_client) == [first]
    assert record(redis_client, second_id) == {} and redis_client.zcard(keys.scheduled(P, F)) == 0
    take(queue)
    assert enqueue(queue, key="order-1") == first  # still live while it runs


def test_the_idempotency_key_is_freed_when_the_job_finishes_so_a_new_enqueue_gets_a_new_id(queue, redis_client):
    first = enqueue(queue, key="order-1")
    delivery, reply = take(queue)
    assert reply[6] == "order-1"  # start hands the key to the worker, which gives it back at finish
    assert queue.settle("c1", [done(delivery, idem_key="order-1")]) == ["ok"]
    second = enqueue(queue, key="order-1")
    assert second != first and redis_client.get(keys.dedup(P, F, "order-1")) == second


def test_an_idempotency_key_is_only_freed_by_the_job_holding_it(queue, redis_client):
    enqueue(queue)
    delivery, _ = take(queue)
    holder = enqueue(queue, key="order-1")
    queue.settle("c1", [done(delivery, idem_key="order-1")])
    assert redis_client.get(keys.dedup(P, F, "order-1")) == holder


def test_enqueue_many_writes_nothing_when_one_job_is_over_max_payload_bytes(redis_client):
    queue = Queue(redis_client, max_payload_bytes=100)
    jobs = [NewJob(new_job_id(F), "[]", "{}"), NewJob(new_job_id(F), f'["{"x" * 200}"]', "{}")]
    with pytest.raises(ValueError, match=r"task_a\(\): arguments are \d+ bytes encoded, over max_payload_bytes=100"):
        queue.enqueue_many(jobs)
    assert redis_client.keys("*") == []


def test_enqueue_many_returns_one_id_per_job_in_order(queue, redis_client):
    jobs = [NewJob(new_job_id(F), "[]", "{}"), NewJob(new_job_id(G), "[]", "{}"), NewJob(new_job_id(F), "[]", "{}")]
    assert queue.enqueue_many(jobs) == [j.job_id for j in jobs]
    assert stream_ids(redis_client, F) == [jobs[0].job_id, jobs[2].job_id]


# -- promote -------------------------------------------------------------------------------
def test_promote_moves_only_due_jobs_exactly_once_and_returns_the_wait_for_the_next(queue, redis_client):
    late = enqueue(queue, delay_s=3600)
    due = enqueue(queue, delay_s=3600)
    make_due(redis_client, due)
    moved, wait_s = queue.promote(F)
    assert moved == 1 and wait_s == pytest.approx(float(record(redis_client, late)["run_at"]) - queue.redis_time(),
                                                   abs=1.0)
    assert queue.promote(F)[0] == 0
    assert stream_ids(redis_client) == [due]
    assert redis_client.zrange(keys.scheduled(P, F), 0, -1) == [late]


def test_promote_with_nothing_scheduled_moves_nothing_and_has_no_next(queue):
    assert queue.promote(F) == (0, None)


def test_promote_moves_at_most_its_limit_and_reports_the_rest_as_due(queue, redis_client):
    ids = [enqueue(queue, delay_s=3600) for _ in range(3)]
    for job_id in ids:
        make_due(redis_client, job_id)
    moved, next_at = queue.promote(F, limit=2)
    assert moved == 2 and next_at == 0
    assert queue.promote(F, limit=2) == (1, None)
    assert sorted(stream_ids(redis_client)) == sorted(ids)


# -- fetch and reclaim ---------------------------------------------------------------------
def test_fetch_returns_deliveries_naming_task_entry_and_job(queue, redis_client):
    job_id = enqueue(queue)
    (delivery,) = queue.fetch("c1", [F], 10, None)
    ((entry_id, _),) = redis_client.xrange(keys.stream(P, F))
    assert delivery == Delivery(F, entry_id, job_id, delivered=1)
    assert [p["consumer"] for p in pending(redis_client)] == ["c1"]


def test_fetch_takes_at_most_count_entries_of_a_stream_oldest_first(queue):
    ids = [enqueue(queue) for _ in range(5)]
    assert [d.job_id for d in queue.fetch("c1", [F], 2, None)] == ids[:2]
    assert [d.job_id for d in queue.fetch("c2", [F], 2, None)] == ids[2:4]
    assert [d.job_id for d in queue.fetch("c1", [F], 2, None)] == ids[4:]
    assert queue.fetch("c1", [F], 2, None) == []


def test_fetch_count_applies_to_each_stream(queue):
    enqueue(queue, function=F), enqueue(queue, function=F), enqueue(queue, function=G)
    assert sorted(d.function for d in queue.fetch("c1", [F, G], 1, None)) == [F, G]


def test_fetch_counts_reads_a_different_count_per_task(queue):
    for _ in range(3):
        enqueue(queue, function=F), enqueue(queue, function=G)
    got = queue.fetch_counts("c1", {F: 2, G: 1})
    assert sorted(d.function for d in got) == [F, F, G]


def test_reclaim_takes_only_entries_idle_long_enough_and_counts_the_delivery(queue, redis_client):
    enqueue(queue)
    take(queue, "c1")
    assert queue.reclaim("c2", F, min_idle_ms=60_000, count=10) == []
    (again,) = reclaim_all(queue, "c2")
    assert again.delivered == 2
    assert [(p["consumer"], p["times_delivered"]) for p in pending(redis_client)] == [("c2", 2)]


def test_drop_acks_and_deletes_an_entry_that_names_no_job(queue, redis_client):
    redis_client.xgroup_create(keys.stream(P, F), keys.GROUP, id="0", mkstream=True)
    redis_client.xadd(keys.stream(P, F), {"id": "garbage"})
    (delivery,) = queue.fetch("c1", [F], 1, None)
    queue.drop(delivery)
    assert redis_client.xlen(keys.stream(P, F)) == 0 and pending(redis_client) == []


# -- start ---------------------------------------------------------------------------------
def test_take_fetches_and_starts_at_most_count_entries_per_task_in_one_call(queue, redis_client):
    ids = [enqueue(queue, function=F) for _ in range(3)] + [enqueue(queue, function=G) for _ in range(2)]
    taken = queue.take("c1", "w1", {F: 2, G: 5})
    assert [(d.function, d.job_id) for d, _ in taken] == [(F, ids[0]), (F, ids[1]), (G, ids[3]), (G, ids[4])]
    assert all(reply[:2] == ["run", 1] for _, reply in taken)
    assert [record(redis_client, i)["status"] for i in ids] == ["active", "active", "queued", "active", "active"]
    assert [p["message_id"] for p in pending(redis_client)] == [d.entry_id for d, _ in taken[:2]]
    assert stream_ids(redis_client)[-1] == ids[2]


def test_take_acks_and_deletes_entries_that_name_no_job_of_the_task(queue, redis_client):
    job_id = enqueue(queue)
    for garbage in ("garbage", f"{G}:abc", f"{F}:", f"{F}:x:abc"):
        redis_client.xadd(keys.stream(P, F), {"id": garbage})
    taken = queue.take("c1", "w1", {F: 10})
    assert [(d.job_id, reply[0]) for d, reply in taken] == [
        (job_id, "run"), ("garbage", "garbage"), (f"{G}:abc", "garbage"), (f"{F}:", "garbage"),
        (f"{F}:x:abc", "garbage")]
    assert stream_ids(redis_client) == [job_id] and len(pending(redis_client)) == 1


def test_take_skips_a_cancelled_job_and_acks_its_entry(queue, redis_client):
    job_id = enqueue(queue)
    queue.cancel(job_id)
    ((delivery, reply),) = queue.take("c1", "w1", {F: 1})
    assert (delivery.job_id, reply) == (job_id, ["terminal", "cancelled"])
    assert redis_client.xlen(keys.stream(P, F)) == 0


def test_take_without_a_group_creates_it_so_entries_already_there_are_taken(queue, redis_client):
    job_id = new_job_id(F)
    redis_client.xadd(keys.stream(P, F), {"id": job_id})  # written before any group existed
    assert queue.take("c1", "w1", {F: 1}) == []
    assert [(d.job_id, reply) for d, reply in queue.take("c1", "w1", {F: 1})] == [(job_id, ["missing"])]


def test_start_marks_the_job_active_counts_the_attempt_and_returns_the_call(queue, redis_client):
    job_id = queue.enqueue(NewJob(new_job_id(F), "[1]", '{"a":2}', key="k", parent_id="p:1", root_id="r:1"))
    delivery, reply = take(queue, "c1")
    assert reply == ["run", 1, "[1]", '{"a":2}', "p:1", "r:1", "k", None]
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["attempts"], rec["worker"], rec["lease"]) == ("active", "1", "w1", delivery.entry_id)
    assert float(rec["started_at"]) == pytest.approx(time.time(), abs=5)


def test_start_of_an_entry_another_consumer_holds_is_stale_and_changes_nothing(queue, redis_client):
    job_id = enqueue(queue)
    (delivery,) = queue.fetch("c1", [F], 1, None)
    before = record(redis_client, job_id)
    assert queue.start("c2", "w2", [delivery]) == [["stale"]]
    assert record(redis_client, job_id) == before
    assert [p["consumer"] for p in pending(redis_client)] == ["c1"]


def test_start_of_a_cancelled_job_acks_its_entry_and_reports_terminal(queue, redis_client):
    job_id = enqueue(queue)
    queue.cancel(job_id)
    _, reply = take(queue)
    assert reply == ["terminal", "cancelled"]
    assert pending(redis_client) == [] and redis_client.xlen(keys.stream(P, F)) == 0
    assert record(redis_client, job_id)["attempts"] == "0"


def test_start_of_a_job_whose_record_is_missing_acks_it(queue, redis_client):
    job_id = enqueue(queue)
    redis_client.delete(keys.job(P, job_id))
    _, reply = take(queue)
    assert reply == ["missing"]
    assert pending(redis_client) == [] and redis_client.xlen(keys.stream(P, F)) == 0


def test_start_replies_poison_once_deliveries_exceed_max_deliveries(queue, redis_client):
    job_id = enqueue(queue, key="k")
    (delivery,) = queue.fetch("c1", [F], 1, None)
    for n in range(2, queue.max_deliveries + 1):  # each worker dies under it; the next reclaims it
        (delivery,) = reclaim_all(queue, f"c{n}")
        assert queue.start(f"c{n}", "w1", [delivery])[0][0] == "run"
    (delivery,) = reclaim_all(queue, "last")
    assert delivery.delivered == queue.max_deliveries + 1
    assert queue.start("last", "w1", [delivery]) == [["poison", queue.max_deliveries + 1, "k"]]
    assert [p["consumer"] for p in pending(redis_client)] == ["last"]  # left for the caller to fail
    fail = done(delivery, "failed", error="delivered too often", failure_reason="lost", idem_key="k")
    assert queue.settle("last", [fail]) == ["ok"]
    assert record(redis_client, job_id)["status"] == "failed" and redis_client.get(keys.dedup(P, F, "k")) is None


def test_a_job_queued_twice_runs_once(queue, redis_client):
    job_id = enqueue(queue)
    queue.cancel(job_id)
    assert Admin(queue).retry(job_id) == "queued"  # the cancelled job's first entry still waits
    first, second = queue.fetch("c1", [F], 10, None)
    assert queue.start("c1", "w1", [first, second]) == [["run", 1, None, None, None, None, None, None],
                                                        ["duplicate"]]
    assert [p["message_id"] for p in pending(redis_client)] == [first.entry_id]


def test_start_with_no_free_concurrency_lease_hands_the_job_back_unstarted(queue, redis_client):
    one = Limits(max_concurrency=1)
    running = enqueue(queue)
    waiting = enqueue(queue)
    first, second = queue.fetch("c1", [F], 2, None)
    replies = queue.start("c1", "w1", [first, second], {F: one})
    assert [r[0] for r in replies] == ["run", "busy"]
    assert redis_client.zrange(keys.leases(P, F), 0, -1) == [running]
    assert stream_ids(redis_client) == [running, waiting]  # a fresh entry, waiting again
    assert record(redis_client, waiting)["attempts"] == "0"


def test_start_beyond_the_rate_limit_defers_the_job_to_when_its_token_arrives(queue, redis_client):
    per_minute = Limits(rate_count=1, rate_period_s=60)
    enqueue(queue), enqueue(queue)
    first, second = queue.fetch("c1", [F], 2, None)
    replies = queue.start("c1", "w1", [first, second], {F: per_minute})
    assert replies[0][0] == "run" and replies[1][0] == "deferred"
    assert float(replies[1][1]) == pytest.approx(time.time() + 60, abs=5)
    assert redis_client.zscore(keys.scheduled(P, F), second.job_id) == pytest.approx(float(replies[1][1]))
    make_due(redis_client, second.job_id)
    queue.promote(F)
    _, reply = take(queue)
    assert reply[0] == "run"  # it starts on the token it reserved, without taking another


# -- finish --------------------------------------------------------------------------------
def test_finish_writes_the_outcome_acks_deletes_the_entry_and_starts_the_ttl(redis_client):
    queue = Queue(redis_client, job_ttl_s=300)
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    assert queue.annotate(job_id, '{"msg": "hi"}')
    assert queue.settle("c1", [done(delivery, result="42")]) == ["ok"]
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["result"]) == ("complete", "42")
    assert not {"error", "traceback", "failure_reason", "lease", "deliveries"} & set(rec), "empty fields are deleted"
    assert float(rec["completed_at"]) == pytest.approx(time.time(), abs=5)
    assert redis_client.xlen(keys.stream(P, F)) == 0 and pending(redis_client) == []
    assert 0 < ttl(redis_client, job_id) <= 300 and 0 < redis_client.ttl(keys.logs(P, job_id)) <= 300


def test_finish_publishes_the_whole_record_to_a_waiter_on_the_done_channel(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.done_channel(P, job_id))
    queue.settle("c1", [done(delivery)])
    message = wait_for(lambda: pubsub.get_message(timeout=0.1), message="the done message")
    flat = json.loads(message["data"])
    assert dict(zip(flat[::2], flat[1::2])) == record(redis_client, job_id)
    assert record(redis_client, job_id)["status"] == "complete"
    pubsub.close()


def test_finish_publishes_the_bare_status_when_no_waiter_is_subscribed_to_the_channel(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    watcher = redis_client.pubsub(ignore_subscribe_messages=True)  # a pattern is not counted by NUMSUB
    watcher.psubscribe(keys.done_channel(P, job_id)[:-len(job_id)] + "*")
    queue.settle("c1", [done(delivery)])
    message = wait_for(lambda: watcher.get_message(timeout=0.1), message="the done message")
    assert message["data"] == "complete"
    watcher.close()


def test_a_failed_finish_records_the_error_and_indexes_the_job_as_failed(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, "failed", result="", error="boom", traceback="tb", failure_reason="exception")])
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["error"], rec["traceback"], rec["failure_reason"]) == (
        "failed", "boom", "tb", "exception")
    assert redis_client.zscore(keys.failed(P, F), job_id) == pytest.approx(float(rec["completed_at"]))


def test_a_worker_whose_delivery_was_reclaimed_cannot_finish_retry_or_release_it(queue, redis_client):
    job_id = enqueue(queue)
    stale, _ = take(queue, "c1")
    (fresh,) = reclaim_all(queue, "c2")
    assert queue.start("c2", "w2", [fresh])[0][:2] == ["run", 2]
    before = record(redis_client, job_id)
    assert queue.settle("c1", [done(stale, result="1")]) == ["stale"]
    assert queue.settle("c1", [Completion(stale, "retry", delay_s=0)]) == ["stale"]
    assert queue.release("c1", [stale], started=True) == ["stale"]
    assert record(redis_client, job_id) == before and ttl(redis_client, job_id) == -1
    assert [p["consumer"] for p in pending(redis_client)] == ["c2"]
    assert queue.settle("c2", [done(fresh, result="2")]) == ["ok"]
    assert record(redis_client, job_id)["result"] == "2"


def test_finish_of_a_cancelled_job_acks_it_and_keeps_it_cancelled(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    assert queue.cancel(job_id) == ("cancelled", "active")
    assert queue.settle("c1", [done(delivery, result="1")]) == ["terminal"]
    rec = record(redis_client, job_id)
    assert rec["status"] == "cancelled" and "result" not in rec
    assert pending(redis_client) == [] and redis_client.xlen(keys.stream(P, F)) == 0


def test_finish_of_a_job_whose_record_vanished_acks_it_as_missing(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    redis_client.delete(keys.job(P, job_id))
    assert queue.settle("c1", [done(delivery)]) == ["missing"]
    assert pending(redis_client) == [] and record(redis_client, job_id) == {}


def test_settle_answers_each_completion_of_a_mixed_batch_in_order(queue, redis_client):
    ids = [enqueue(queue, function=F), enqueue(queue, function=G), enqueue(queue, function=F)]
    deliveries = queue.fetch("c1", [F], 2, None) + queue.fetch("c1", [G], 1, None)
    queue.start("c1", "w1", deliveries)
    by_job = {d.job_id: d for d in deliveries}
    (reclaimed,) = queue.reclaim("c2", F, 0, 1)  # the oldest entry of F moves to c2
    batch = [Completion(by_job[ids[2]], "retry", delay_s=60), done(by_job[ids[1]], result="g"),
             done(by_job[ids[0]], result="f")]
    assert queue.settle("c1", batch) == ["ok", "ok", "stale"]
    assert [record(redis_client, j)["status"] for j in ids] == ["active", "complete", "retrying"]
    assert reclaimed.job_id == ids[0]


# -- retry ---------------------------------------------------------------------------------
def test_retry_with_a_delay_schedules_the_job_as_retrying(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    retry = Completion(delivery, "retry", error="boom", traceback="tb", failure_reason="exception", delay_s=60)
    assert queue.settle("c1", [retry]) == ["ok"]
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["error"], rec["failure_reason"], rec["attempts"]) == (
        "retrying", "boom", "exception", "1")
    run_at = redis_client.zscore(keys.scheduled(P, F), job_id)
    assert run_at == pytest.approx(time.time() + 60, abs=5) and float(rec["run_at"]) == pytest.approx(run_at)
    assert redis_client.xlen(keys.stream(P, F)) == 0 and pending(redis_client) == []


def test_retry_without_a_delay_puts_the_job_straight_back_in_the_stream(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.settle("c1", [Completion(delivery, "retry", error="boom", failure_reason="exception")])
    assert stream_ids(redis_client) == [job_id] and redis_client.zcard(keys.scheduled(P, F)) == 0
    again, reply = take(queue, "c2")
    assert again.entry_id != delivery.entry_id and reply[1] == 2
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["error"], rec["failure_reason"]) == ("active", "", "")


def test_retry_of_a_cancelled_job_acks_it_and_does_not_requeue_it(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.cancel(job_id)
    assert queue.settle("c1", [Completion(delivery, "retry", delay_s=0)]) == ["terminal"]
    assert record(redis_client, job_id)["status"] == "cancelled"
    assert redis_client.xlen(keys.stream(P, F)) == 0 and redis_client.zcard(keys.scheduled(P, F)) == 0


# -- TTLs ----------------------------------------------------------------------------------
def test_a_job_that_has_not_ended_never_expires(queue, redis_client):
    queued, delayed = enqueue(queue), enqueue(queue, delay_s=86400 * 7)
    active = enqueue(queue, function=G)
    take(queue, function=G)
    retrying_later, retrying_now = enqueue(queue), enqueue(queue)
    first, second = queue.fetch("c1", [F], 3, None)[1:]
    queue.start("c1", "w1", [first, second])
    queue.settle("c1", [Completion(first, "retry", delay_s=3600), Completion(second, "retry")])
    for job_id in (queued, delayed, active, retrying_later, retrying_now):
        assert ttl(redis_client, job_id) == -1, record(redis_client, job_id)


# -- cancel --------------------------------------------------------------------------------
def test_cancel_of_a_queued_job_ends_it_and_its_entry_is_acked_without_running(queue, redis_client):
    job_id = enqueue(queue, key="k")
    assert queue.cancel(job_id) == ("cancelled", "queued")
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["failure_reason"]) == ("cancelled", "cancelled") and ttl(redis_client, job_id) > 0
    assert redis_client.get(keys.dedup(P, F, "k")) is None
    _, reply = take(queue)
    assert reply == ["terminal", "cancelled"] and record(redis_client, job_id)["attempts"] == "0"
    assert pending(redis_client) == []


def test_cancel_of_a_delayed_job_takes_it_off_the_schedule(queue, redis_client):
    job_id = enqueue(queue, delay_s=60)
    assert queue.cancel(job_id) == ("cancelled", "queued")
    assert redis_client.zcard(keys.scheduled(P, F)) == 0 and queue.promote(F) == (0, None)


def test_cancel_publishes_cancelled_to_waiters(queue, redis_client):
    job_id = enqueue(queue)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.done_channel(P, job_id))
    queue.cancel(job_id)
    flat = json.loads(wait_for(lambda: pubsub.get_message(timeout=0.1), message="the done message")["data"])
    assert dict(zip(flat[::2], flat[1::2]))["status"] == "cancelled"
    pubsub.close()


def test_a_wait_is_not_fooled_by_a_record_left_over_from_an_earlier_subscription(queue, redis_client):
    first, second = enqueue(queue), enqueue(queue)
    pubsub = queue.waiter._subscribe([keys.done_channel(P, first)])
    queue.cancel(first)  # its record is published to the pubsub that the next wait reuses
    wait_for(lambda: redis_client.hget(keys.job(P, first), "status") == "cancelled")
    queue.waiter._release(pubsub, [keys.done_channel(P, first)])
    assert queue.wait(second, timeout_s=0.5)["status"] == "queued"


def test_cancel_of_a_job_that_ended_reports_its_status_and_changes_nothing(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, result="1")])
    before = record(redis_client, job_id)
    assert queue.cancel(job_id) == ("terminal", "complete")
    assert record(redis_client, job_id) == before


def test_cancel_of_an_unknown_job_is_missing(queue):
    assert queue.cancel(new_job_id(F)) == ("missing", None)


# -- release -------------------------------------------------------------------------------
def test_release_of_a_started_job_queues_it_again_and_gives_back_its_attempt(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    assert queue.release("c1", [delivery], started=True) == ["ok"]
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["attempts"], rec.get("lease")) == ("queued", "0", None)
    assert stream_ids(redis_client) == [job_id] and pending(redis_client) == []
    again, reply = take(queue, "c2")
    assert again.entry_id != delivery.entry_id and reply[:2] == ["run", 1]


def test_release_of_an_unstarted_delivery_keeps_the_attempts(queue, redis_client):
    job_id = enqueue(queue)
    (delivery,) = queue.fetch("c1", [F], 1, None)
    assert queue.release("c1", [delivery], started=False) == ["ok"]
    assert record(redis_client, job_id)["attempts"] == "0"
    assert [d.job_id for d in queue.fetch("c2", [F], 1, None)] == [job_id]


def test_release_of_a_cancelled_job_only_acks_it(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.cancel(job_id)
    assert queue.release("c1", [delivery], started=True) == ["terminal"]
    assert redis_client.xlen(keys.stream(P, F)) == 0 and record(redis_client, job_id)["status"] == "cancelled"


# -- touch ---------------------------------------------------------------------------------
def idle_ms(client) -> int:
    (entry,) = pending(client)
    return entry["time_since_delivered"]


def test_touch_resets_the_idle_time_so_reclaim_takes_nothing(queue, redis_client):
    enqueue(queue)
    delivery, _ = take(queue)
    wait_for(lambda: idle_ms(redis_client) >= 300, message="the entry to go idle")
    assert queue.touch("c1", [delivery]) == 1
    assert idle_ms(redis_client) < 300
    assert queue.reclaim("c2", F, min_idle_ms=300, count=10) == []
    assert pending(redis_client)[0]["times_delivered"] == 1  # touching is not a delivery


def test_touch_never_takes_back_an_entry_another_worker_reclaimed(queue, redis_client):
    job_id = enqueue(queue)
    frozen, _ = take(queue, "c1")
    (fresh,) = reclaim_all(queue, "c2")
    queue.start("c2", "w2", [fresh])
    assert queue.touch("c1", [frozen]) == 0
    assert [p["consumer"] for p in pending(redis_client)] == ["c2"]
    assert queue.settle("c2", [done(fresh, result="2")]) == ["ok"]
    assert record(redis_client, job_id)["result"] == "2"


def test_touch_extends_the_concurrency_lease_of_leased_tasks_only(queue, redis_client):
    enqueue(queue, function=F), enqueue(queue, function=G)
    deliveries = queue.fetch("c1", [F, G], 1, None)
    queue.start("c1", "w1", deliveries, {F: Limits(max_concurrency=5), G: Limits(max_concurrency=5)}, lease_ms=1000)
    before = {f: redis_client.zrange(keys.leases(P, f), 0, -1, withscores=True)[0][1] for f in (F, G)}
    queue.touch("c1", deliveries, leased=[F], lease_ms=3_600_000)
    after = {f: redis_client.zrange(keys.leases(P, f), 0, -1, withscores=True)[0][1] for f in (F, G)}
    assert after[F] > before[F] + 3_000_000 and after[G] == before[G]


# -- annotate ------------------------------------------------------------------------------
def test_annotate_writes_progress_and_logs_only_while_the_job_is_active(queue, redis_client):
    job_id = enqueue(queue)
    assert queue.annotate(job_id, '{"m": 0}', progress="0.1") is False
    delivery, _ = take(queue)
    assert queue.annotate(job_id, '{"m": 1}', progress="0.5", checkpoint='{"i": 3}') is True
    rec = record(redis_client, job_id)
    assert (rec["progress"], rec["checkpoint"]) == ("0.5", '{"i": 3}')
    queue.settle("c1", [done(delivery)])
    assert queue.annotate(job_id, '{"m": 2}', progress="0.9") is False
    assert record(redis_client, job_id)["progress"] == "0.5" and queue.logs(job_id) == ['{"m": 1}']


def test_a_checkpoint_is_handed_to_the_next_attempt(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.annotate(job_id, checkpoint='{"i": 3}')
    queue.settle("c1", [Completion(delivery, "retry")])
    _, reply = take(queue)
    assert reply[1] == 2 and reply[7] == '{"i": 3}'


# -- waiting -------------------------------------------------------------------------------
def subscribers(client, job_id: str) -> int:
    return client.pubsub_numsub(keys.done_channel(P, job_id))[0][1]


def test_wait_wakes_with_the_terminal_record_when_another_thread_finishes_the_job(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(queue.wait(job_id, 30)))
    waiter.start()
    wait_for(lambda: subscribers(redis_client, job_id) == 1, message="the waiter to subscribe")
    queue.settle("c1", [done(delivery, result="7")])
    waiter.join(4)  # well before its 5 s re-read: the message woke it
    assert not waiter.is_alive() and got[0]["status"] == "complete" and got[0]["result"] == "7"


def test_wait_returns_the_last_record_when_it_times_out(queue):
    job_id = enqueue(queue)
    assert queue.wait(job_id, 0.05)["status"] == "queued"
    assert queue.wait(job_id, 0)["status"] == "queued"


def test_wait_on_an_ended_or_unknown_job_returns_at_once(queue):
    job_id = enqueue(queue)
    queue.cancel(job_id)
    assert queue.wait(job_id, None)["status"] == "cancelled"
    assert queue.wait(new_job_id(F), None) is None


def test_consecutive_waits_are_not_confused_by_an_earlier_job(queue):
    first, second = enqueue(queue), enqueue(queue)
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery)])
    assert queue.wait(first, 5)["status"] == "complete"
    assert queue.wait(second, 0.05)["status"] == "queued"


def test_wait_any_returns_the_first_job_to_end_or_none_on_timeout(queue, redis_client):
    first, second = enqueue(queue), enqueue(queue)
    assert queue.wait_any([first, second], 0.05) is None
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(queue.wait_any([first, second], 30)))
    waiter.start()
    wait_for(lambda: subscribers(redis_client, second) == 1, message="the waiter to subscribe")
    queue.cancel(second)
    waiter.join(4)
    assert got == [second]


# -- groups --------------------------------------------------------------------------------
def test_enqueue_after_a_flushall_recreates_the_group_so_fetch_gets_the_job(queue, redis_client):
    enqueue(queue)
    assert len(queue.fetch("c1", [F], 1, None)) == 1
    redis_client.flushall()
    job_id = enqueue(queue)
    assert [d.job_id for d in queue.fetch("c1", [F], 1, None)] == [job_id]


def test_promote_after_a_flushall_recreates_the_group(queue, redis_client):
    queue.ensure_groups([F])
    redis_client.flushall()
    job_id = enqueue(queue, delay_s=60)
    make_due(redis_client, job_id)
    queue.promote(F)
    assert [d.job_id for d in queue.fetch("c1", [F], 1, None)] == [job_id]


def test_fetch_without_a_group_creates_it_so_entries_already_there_are_delivered(queue, redis_client):
    job_id = new_job_id(F)
    redis_client.xadd(keys.stream(P, F), {"id": job_id})  # written before any group existed
    assert [d.job_id for d in queue.fetch("c1", [F], 1, None)] == [job_id]  # the group made, read again
    assert queue.reclaim("c2", F, 0, 1)[0].job_id == job_id


def test_forget_consumer_keeps_a_consumer_with_pending_entries_and_deletes_an_idle_one(queue, redis_client):
    enqueue(queue)
    take(queue, "busy")
    queue.fetch("idle", [F], 1, None)
    queue.registry.forget_consumer("busy", [F])
    queue.registry.forget_consumer("idle", [F])
    queue.registry.forget_consumer("idle", [G])  # a stream that does not exist is no error
    consumers = redis_client.xinfo_consumers(keys.stream(P, F), keys.GROUP)
    assert [c["name"] for c in consumers] == ["busy"]


# -- crons, locks and operator retries (registry.py and admin.py call these scripts) -------
def test_cron_fire_enqueues_the_runs_and_moves_the_cursor_exactly_once(queue, redis_client):
    runs = [(new_job_id(F), 1000.0), (new_job_id(F), 1060.0)]
    assert queue.registry.cron_fire(F, "", 1120.0, "* * * * *", runs) is True
    assert queue.registry.cron_fire(F, "", 1120.0, "* * * * *", [(new_job_id(F), 1000.0)]) is False
    assert stream_ids(redis_client) == [job_id for job_id, _ in runs]
    assert queue.registry.cron_cursors([F, G]) == [("1120.0", "* * * * *", 0.0), ("", "", 0.0)]
    rec = record(redis_client, runs[1][0])
    assert (rec["status"], rec["cron_at"], rec["root_id"]) == ("queued", "1060.0", runs[1][0])
    assert queue.registry.cron_fire(F, "1120.0", 1180.0, "* * * * *", []) is True


def test_a_cron_lock_has_one_owner_who_keeps_it_until_it_expires(queue):
    assert queue.registry.lead("w1", [F, G], 60_000) == [F, G]
    assert queue.registry.lead("w2", [F, G], 60_000) == []
    assert queue.registry.lead("w1", [F], 60_000) == [F]
    assert queue.registry.lead("w1", [G], 1) == [G]  # renewed with a 1 ms expiry
    assert wait_for(lambda: queue.registry.lead("w2", [G], 60_000), message="the lock to expire") == [G]


def test_operator_retry_queues_an_ended_job_again_under_its_id_without_ttl(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, "failed", result="", error="boom", failure_reason="exception")])
    assert Admin(queue).retry(job_id) == "queued"
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["attempts"], rec.get("error"), rec.get("failure_reason")) == ("queued", "0", None, None)
    assert ttl(redis_client, job_id) == -1 and redis_client.zscore(keys.failed(P, F), job_id) is None
    _, reply = take(queue)
    assert reply[:2] == ["run", 1]
    assert Admin(queue).retry(job_id) == "not_ended (active)"
    assert Admin(queue).retry(new_job_id(F)) == "missing"


def test_operator_retry_of_a_job_cancelled_while_running_waits_until_its_run_stopped(queue, redis_client):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    queue.cancel(job_id)
    assert Admin(queue).retry(job_id) == "not_ended (cancelled, its run has not stopped yet)"
    assert queue.settle("c1", [done(delivery, "cancelled", result="")]) == ["terminal"]
    assert Admin(queue).retry(job_id) == "queued"
    _, reply = take(queue)
    assert reply[:2] == ["run", 1]


# -- reading -------------------------------------------------------------------------------
def test_backlog_counts_waiting_and_held_entries_and_due_scheduled_jobs(queue, redis_client):
    enqueue(queue), enqueue(queue)
    take(queue)
    later, due = enqueue(queue, delay_s=60), enqueue(queue, delay_s=60)
    make_due(redis_client, due)
    assert queue.backlog([F]) == 3
    assert queue.backlog([F], [later]) == 4
    assert queue.statuses([later, new_job_id(F)]) == ["queued", None]
