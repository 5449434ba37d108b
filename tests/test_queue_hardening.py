"""Queue-level defects of the hardening issue, each reproduced on the real server: the poison
cap across entries, safe trimming, reclaiming one's own entry, operator retry and purge races,
fenced annotations, vanished records, and Redis-clock scheduling."""

from __future__ import annotations

import redis

from upnext.store import dataformat, keys
from upnext.store.admin import Admin
from upnext.store.connection import connect
from upnext.store.limits import Limits
from upnext.store.queue import Queue
from upnext.store.records import Completion, NewJob
from upnext.task import build_job

A, B = "worker-a", "worker-b"


def job(function: str = "fn", key: str = "", delay_s: float = 0.0) -> NewJob:
    return build_job(function, "[]", "{}", key=key, delay_s=delay_s)


def take_all(queue: Queue, consumer: str, function: str = "fn", limits=None) -> list:
    return queue.take(consumer, consumer, {function: 1000}, limits)


def _dies_and_is_reclaimed(queue: Queue, name: str, limits=None) -> list:
    """Its worker died: another one reclaims the entry and starts it; returns the start reply."""
    (reclaimed,) = queue.reclaim(name, "fn", 0, 10)
    return queue.start(name, name, [reclaimed], limits)[0]


def test_poison_cap_counts_deliveries_per_job_across_deferred_entries(queue: Queue):
    """A job that kills its worker and is then deferred by its rate limit gets a new entry whose
    delivery count starts over; the cap must still fire after max_deliveries runs."""
    queue.max_deliveries = 3
    limits = {"fn": Limits(rate_count=1, rate_period_s=3600)}
    job_id = queue.enqueue(job())
    kinds = [take_all(queue, "w0", limits=limits)[0][1][0]]
    for i in range(10):
        kinds.append(_dies_and_is_reclaimed(queue, f"r{i}", limits)[0])
        if kinds[-1] != "deferred":
            break
        queue.client.zadd(keys.scheduled("upnext", "fn"), {job_id: 0})  # its reserved token is due
        queue.promote("fn")
        kinds.append(take_all(queue, f"w{i + 1}", limits=limits)[0][1][0])
    assert kinds == ["run", "deferred", "run", "deferred", "run", "poison"]


def test_poison_cap_counts_a_job_made_busy_by_its_concurrency_cap(queue: Queue):
    queue.max_deliveries = 2
    capped = {"fn": Limits(max_concurrency=1)}
    queue.enqueue(job())
    kinds = [take_all(queue, "w0", limits=capped)[0][1][0]]
    queue.client.zadd(keys.leases("upnext", "fn"), {"fn:another": 10**15})  # the cap is reached
    kinds.append(_dies_and_is_reclaimed(queue, "r0", capped)[0])
    queue.client.delete(keys.leases("upnext", "fn"))  # the other run ended; the dead worker's lease expired
    kinds.append(take_all(queue, "w1", limits=capped)[0][1][0])
    kinds.append(_dies_and_is_reclaimed(queue, "r1", capped)[0])
    assert kinds == ["run", "busy", "run", "poison"]


def test_a_finished_run_resets_the_death_count(queue: Queue):
    queue.max_deliveries = 2
    for _ in range(4):  # four clean runs of retried attempts never look like deaths
        job_id = queue.enqueue(job())
        (d, reply), = take_all(queue, A)
        assert reply[0] == "run"
        assert queue.settle(A, [Completion(d, "retry", error="x", failure_reason="exception")]) == ["ok"]
        (d, reply), = take_all(queue, A)
        assert reply[0] == "run", reply
        assert queue.settle(A, [Completion(d, "complete", result="1")]) == ["ok"]
        assert queue.get(job_id)["status"] == "complete"


def test_stream_maxlen_never_trims_undelivered_or_running_entries(redis_client):
    queue = Queue(redis_client, stream_maxlen=50)
    running = [queue.enqueue(job()) for _ in range(20)]
    taken = take_all(queue, A)
    assert {d.job_id for d, _ in taken} == set(running)
    later = queue.enqueue_many([job() for _ in range(500)])
    # every running entry is still ours to finish, and every queued job can still be taken
    replies = queue.settle(A, [Completion(d, "complete", result="1") for d, _ in taken])
    assert replies == ["ok"] * 20
    started = {d.job_id for d, _ in take_all(queue, B)}
    assert started == set(later)
    assert all(queue.get(j)["status"] == "active" for j in later)


def test_a_worker_never_reclaims_its_own_running_entry(queue: Queue):
    queue.enqueue(job())
    (d, reply), = take_all(queue, A)
    assert reply[0] == "run"
    assert queue.reclaim(A, "fn", 0, 10, running={d.entry_id}) == []
    assert [r.entry_id for r in queue.reclaim(B, "fn", 0, 10)] == [d.entry_id]


def test_a_worker_reclaims_its_own_entry_that_it_is_not_running(queue: Queue):
    """A start that Redis refused after its read (a full Redis) leaves the entry pending with us,
    unstarted: a lone worker must take it back, or the job would wait for ever."""
    queue.enqueue(job())
    (d,) = queue.fetch(A, ["fn"], 10, None)
    assert [r.entry_id for r in queue.reclaim(A, "fn", 0, 10, running=set())] == [d.entry_id]


def test_operator_retry_of_a_job_cancelled_while_queued_runs_it_once(queue: Queue):
    job_id = queue.enqueue(job())
    assert queue.cancel(job_id)[0] == "cancelled"
    assert Admin(queue).retry(job_id) == "queued"
    runs = [r for d, r in take_all(queue, A) if r[0] == "run"]
    assert len(runs) == 1
    assert queue.client.xlen(keys.stream("upnext", "fn")) == 1  # only the running entry is left


def test_operator_retry_takes_the_idempotency_key_again(queue: Queue):
    job_id = queue.enqueue(job(key="order-1"))
    (d, _), = take_all(queue, A)
    queue.settle(A, [Completion(d, "failed", error="boom", failure_reason="exception", idem_key="order-1")])
    assert Admin(queue).retry(job_id) == "queued"
    assert queue.enqueue(job(key="order-1")) == job_id  # a duplicate submit joins the retried job


def test_operator_retry_is_refused_while_another_job_holds_its_key(queue: Queue):
    first = queue.enqueue(job(key="order-1"))
    queue.cancel(first)
    second = queue.enqueue(job(key="order-1"))
    assert second != first
    outcome = Admin(queue).retry(first)
    assert outcome.startswith("key_taken") and second in outcome
    assert queue.get(first)["status"] == "cancelled"


def test_purge_leaves_a_job_that_starts_during_it_alone(queue: Queue):
    """A worker starts a job just as purge begins reading: whatever purge reads first (a stream
    read outside a script, or its script), the started job must not be cancelled."""
    queue.enqueue_many([job() for _ in range(3)])
    admin = Admin(queue)
    started: list = []

    def racing(call):
        def wrapped(*args, **kwargs):
            if not started:
                started.extend(queue.take(A, A, {"fn": 1}))
            return call(*args, **kwargs)
        return wrapped

    admin.client.xrange = racing(admin.client.xrange)  # type: ignore[method-assign]
    queue.scripts.purge = racing(queue.scripts.purge)  # type: ignore[method-assign]
    cancelled = admin.purge("fn")
    (d, _), = started
    assert queue.get(d.job_id)["status"] == "active"
    assert queue.settle(A, [Completion(d, "complete", result="1")]) == ["ok"]
    assert cancelled == 2


def test_a_worker_whose_delivery_was_reclaimed_cannot_annotate_the_job(queue: Queue):
    job_id = queue.enqueue(job())
    (old, _), = take_all(queue, A)
    (new,) = queue.reclaim(B, "fn", 0, 10)
    assert queue.start(B, B, [new])[0][0] == "run"
    assert not queue.annotate(job_id, lease=(old.entry_id, A), progress=0.5)
    assert queue.annotate(job_id, lease=(new.entry_id, B), progress=0.7)
    assert queue.get(job_id)["progress"] == "0.7"


def test_a_job_whose_record_vanished_does_not_keep_its_idempotency_key(queue: Queue):
    first = queue.enqueue(job(key="order-9"))
    queue.client.delete(keys.job("upnext", first))
    second = queue.enqueue(job(key="order-9"))
    assert second != first
    assert queue.get(second)["status"] == "queued"


def test_a_retrying_job_handed_back_unstarted_stays_retrying(queue: Queue):
    job_id = queue.enqueue(job())
    (d, _), = take_all(queue, A)
    queue.settle(A, [Completion(d, "retry", error="x", failure_reason="exception")])
    fetched = queue.fetch(A, ["fn"], 10, None)
    assert queue.release(A, fetched, started=False) == ["ok"]
    assert queue.get(job_id)["status"] == "retrying"


def test_promote_answers_the_wait_in_redis_time(queue: Queue):
    queue.enqueue(job(delay_s=30))
    moved, wait_s = queue.promote("fn")
    assert moved == 0
    assert wait_s is not None and 29 < wait_s <= 30


def test_backlog_counts_due_jobs_by_redis_time(queue: Queue, monkeypatch):
    queue.enqueue(job(delay_s=3600))
    monkeypatch.setattr("time.time", lambda: 10**10)  # a local clock far ahead of Redis
    assert queue.backlog(["fn"]) == 0


def test_garbage_job_ids_with_non_hex_or_undecodable_bytes_are_dropped(redis_url: str):
    raw = redis.Redis.from_url(redis_url)
    raw.flushall()
    queue = Queue(redis.Redis.from_url(redis_url, decode_responses=True)).with_client(connect(redis_url, tolerant=True))
    stream = keys.stream("upnext", "fn")
    queue.ensure_groups(["fn"])
    raw.xadd(stream, {b"id": b"fn:\xff\xfe"})
    raw.xadd(stream, {b"\xff": b"\xfe"})
    raw.xadd(stream, {b"id": b"fn:not-hex"})
    taken = take_all(queue, A)
    assert [r for _, r in taken] == [["garbage"]] * 3
    assert raw.xlen(stream) == 0


def test_every_job_record_carries_the_format_version(queue: Queue):
    job_id = queue.enqueue(job())
    assert queue.get(job_id)["v"] == str(dataformat.FORMAT_VERSION)
