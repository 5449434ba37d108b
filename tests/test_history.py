"""Job history on the real server: the indexes the ending Lua calls write, list_jobs's merge,
filters and cursor pages, expiry leaving the index, and ``upnext-gevent jobs`` on a real worker."""

from __future__ import annotations

import pytest

from tests.apps import jobs as job_app
from tests.test_ops import ops, ops_json
from tests.test_queue import F, G, P, done, take
from tests.workers import wait_for
from upnext.job import new_job_id
from upnext.store import history, keys
from upnext.store.admin import Admin
from upnext.store.history import decode_cursor, encode_cursor, list_jobs
from upnext.store.queue import Queue
from upnext.store.records import NewJob


def submit(queue: Queue, function: str = F, key: str = "", parent_id: str = "", root_id: str = "") -> str:
    return queue.enqueue(NewJob(new_job_id(function), "[]", "{}", key=key, parent_id=parent_id, root_id=root_id))


def run(queue: Queue, function: str = F, status: str = "complete", **fields) -> str:
    """Take the next job of ``function`` and end it so; returns its id."""
    delivery, _ = take(queue, function=function)
    assert queue.settle("c1", [done(delivery, status, run_s=0.01, **fields)]) == ["ok"]
    return delivery.job_id


def all_pages(queue: Queue, functions, limit: int, **filters) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        rows, cursor = list_jobs(queue, functions, limit=limit, cursor=cursor, **filters)
        pages.append([r["job_id"] for r in rows])
        if cursor is None:
            return pages


def test_the_listing_merges_functions_newest_first_across_pages(queue):
    ended = []
    for i in range(12):
        function = F if i % 3 else G
        submit(queue, function)
        ended.append(run(queue, function))
    pages = all_pages(queue, [F, G], limit=5)
    assert [len(p) for p in pages[:3]] == [5, 5, 2]
    listed = [j for p in pages for j in p]
    # newest first to the millisecond (two functions' jobs ending in the same ms order by id)
    assert sorted(listed) == sorted(ended) and len(set(listed)) == 12
    ms = [int(float(queue.fields(j, "completed_at")[0]) * 1000) for j in listed]
    assert ms == sorted(ms, reverse=True)
    assert [j for j in listed if j.startswith(F)] == [j for j in ended[::-1] if j.startswith(F)]
    rows, _ = list_jobs(queue, [F, G], limit=1)
    row = rows[0]
    assert (row["job_id"], row["function"], row["status"], row["attempts"]) == (ended[-1], F, "complete", 1)
    assert row["enqueued_at"] <= row["started_at"] <= row["completed_at"]


def test_jobs_ended_in_one_batch_share_a_time_and_still_page_without_loss(queue):
    ids = [submit(queue) for _ in range(6)]
    deliveries = queue.fetch("c1", [F], 6, None)
    queue.start("c1", "w1", deliveries)
    assert queue.settle("c1", [done(d) for d in deliveries]) == ["ok"] * 6  # one finish call: one completed_at
    pages = all_pages(queue, [F], limit=1)
    assert sorted(j for p in pages for j in p) == sorted(ids) and sum(map(len, pages)) == 6


def test_filters_by_status_window_key_and_root(queue, redis_client):
    completed = [run(queue) for _ in (submit(queue), submit(queue))]
    submit(queue)
    failed = run(queue, status="failed", error="ValueError: bad\n  more lines", failure_reason="exception")
    root = submit(queue, G)
    child = submit(queue, G, key="order-123", parent_id=root, root_id=root)
    cancelled = queue.cancel(child)[0] == "cancelled" and child
    grandchild = submit(queue, F, parent_id=child, root_id=root)
    run(queue, root_id=root)
    assert [r["job_id"] for r in list_jobs(queue, [F], status="complete")[0]] == [grandchild, *completed[::-1]]
    (row,), _ = list_jobs(queue, [F, G], status="failed")
    assert (row["job_id"], row["error"], row["failure_reason"]) == (failed, "ValueError: bad", "exception")
    assert [r["job_id"] for r in list_jobs(queue, [F, G], status="cancelled")[0]] == [cancelled]
    assert [r["job_id"] for r in list_jobs(queue, [F, G], key="order-123")[0]] == [child]
    tree = [r["job_id"] for r in list_jobs(queue, [F, G], root_id=root)[0]]
    assert sorted(tree) == sorted([root, child, grandchild])
    failed_at = float(redis_client.hget(keys.job(P, failed), "completed_at"))
    window = list_jobs(queue, [F], since=failed_at, until=failed_at)[0]  # to the millisecond
    assert failed in [r["job_id"] for r in window]
    assert {int(r["completed_at"] * 1000) for r in window} == {int(failed_at * 1000)}
    second_at = float(redis_client.hget(keys.job(P, completed[1]), "completed_at"))
    before = list_jobs(queue, [F], until=second_at)[0]
    assert {r["job_id"] for r in before} >= set(completed)
    assert all(int(r["completed_at"] * 1000) <= int(second_at * 1000) for r in before)
    with pytest.raises(ValueError, match="status must be one of complete, failed, cancelled.*'active'"):
        list_jobs(queue, [F], status="active")


def test_a_purged_job_enters_the_history_as_cancelled(queue):
    waiting = submit(queue)
    assert Admin(queue).purge(F) == 1
    assert [r["job_id"] for r in list_jobs(queue, [F], status="cancelled")[0]] == [waiting]


def test_an_operator_retry_takes_the_job_out_of_the_history_until_it_ends_again(queue, redis_client):
    submit(queue)
    job_id = run(queue, status="failed", error="boom")
    assert Admin(queue).retry(job_id) == "queued"
    assert list_jobs(queue, [F])[0] == []
    # its old entry is gone, not merely skipped: a new end in the same millisecond would match it
    assert redis_client.xlen(keys.ended(P, F)) == 0
    run(queue)
    assert [r["status"] for r in list_jobs(queue, [F])[0]] == ["complete"]


def test_expired_jobs_leave_the_index_on_the_next_write(redis_client):
    queue = Queue(redis_client, P, job_ttl_s=1)
    queue.enqueue_many([NewJob(new_job_id(F), "[]", "{}") for _ in range(150)])
    deliveries = queue.fetch("c1", [F], 150, None)
    queue.start("c1", "w1", deliveries)
    queue.settle("c1", [done(d) for d in deliveries])
    old_at = float(redis_client.hget(keys.job(P, deliveries[0].job_id), "completed_at"))
    wait_for(lambda: queue.redis_time() > old_at + 1.01, message="the first jobs' TTL to pass")
    wait_for(lambda: not redis_client.exists(keys.job(P, deliveries[0].job_id)), message="the records to expire")
    assert list_jobs(queue, [F])[0] == [], "an entry whose record expired is not listed"
    assert redis_client.xlen(keys.ended(P, F)) == 150
    submit(queue)
    new = run(queue)
    # XADD trims whole stream nodes (100 entries) past the TTL: the old node went, the newer one
    # still holds its 50 old entries beside the new one until it is all old
    assert redis_client.xlen(keys.ended(P, F)) == 51
    assert [r["job_id"] for r in list_jobs(queue, [F])[0]] == [new]


def test_a_completed_job_kept_shorter_than_the_index_is_skipped(redis_client):
    queue = Queue(redis_client, P, job_ttl_s=3600, completed_ttl_s=60)
    submit(queue)
    job_id = run(queue)
    assert 0 < redis_client.ttl(keys.job(P, job_id)) <= 60
    redis_client.delete(keys.job(P, job_id))  # as its 60 s TTL would
    assert list_jobs(queue, [F])[0] == []


def test_a_cursor_round_trips_and_a_bad_one_is_named():
    bound = ((1764600000123, 4), "task_a:00ff")
    assert decode_cursor(encode_cursor(bound)) == bound
    with pytest.raises(ValueError, match="cursor 'nope!' is not one that `jobs` printed"):
        decode_cursor("nope!")


def test_the_jobs_command_lists_a_real_workers_jobs_a_page_at_a_time(start_worker):
    start_worker("tests.apps.jobs:worker")
    futures = [job_app.add.submit(i, 1) for i in range(3)]
    for future in futures:
        future.result(timeout=20)
    first = ops_json("jobs", "--function", "add", "--limit", "2")
    assert len(first["jobs"]) == 2 and first["next_cursor"]
    second = ops_json("jobs", "--function", "add", "--limit", "2", "--cursor", first["next_cursor"])
    listed = [r["job_id"] for r in first["jobs"] + second["jobs"]]
    assert sorted(listed) == sorted(f.job_id for f in futures) and second["next_cursor"] is None
    text = ops("jobs", "--status", "complete", "--since", "1h")
    assert text.returncode == 0 and all(f.job_id in text.stdout for f in futures), text.stdout
    bad = ops("jobs", "--since", "soon")
    assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr


def test_a_status_filter_reads_a_bounded_number_of_entries_per_call_and_pages_on(queue, monkeypatch):
    submit(queue)
    failed = run(queue, status="failed", error="boom")
    for _ in range(10):
        submit(queue)
        run(queue)
    monkeypatch.setattr(history, "MAX_SCANNED", 4)
    rows, cursor = list_jobs(queue, [F], status="failed")
    assert rows == [] and cursor, "past 4 entries it stops and says where"
    calls = 1
    while not rows:
        rows, cursor = list_jobs(queue, [F], status="failed", cursor=cursor)
        calls += 1
    assert [r["job_id"] for r in rows] == [failed] and calls == 3 and cursor is None
