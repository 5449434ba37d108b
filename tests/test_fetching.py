"""The fetch loop of an idle worker (runtime/fetching.py): on a single Redis it waits with an
XREAD that claims nothing and takes in the same round trip (Queue.wake_and_take). What that
must never do: spin, lose an entry, or start a job twice when several workers wait on one task."""

from __future__ import annotations

import time

from tests.apps import jobs
from tests.workers import wait_for
from upnext.store import keys
from upnext.store.starting import wake_and_take

IDLE_WINDOW_S = 2.0


def calls(client, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_wait_returns_at_once_for_an_unread_entry_and_takes_it_in_the_same_call(queue, redis_client):
    job_id = queue.enqueue(jobs.add.new_job((1, 2), {}))
    before = calls(redis_client, "xread")
    taken, woke, cursors = wake_and_take(queue, ["add", "boom"], {"add": 4, "boom": 4}, {}, 5000, "w1", "w1", None,
                                         30000)
    assert woke == {"add"} and [(d.job_id, reply[0]) for d, reply in taken] == [(job_id, "run")]
    assert calls(redis_client, "xread") == before + 1
    normal = keys.stream("upnext", "add")
    assert cursors[normal] == taken[0][0].entry_id  # the last entry its group was given
    assert keys.stream("upnext", "add", "high") not in cursors  # no entry in it: not read, so not known
    # From those cursors nothing is unread: the next wait blocks, and takes nothing.
    queue.take("w2", "w2", {"add": 1})
    taken, woke, _ = wake_and_take(queue, ["add"], {"add": 4}, cursors, 50, "w1", "w1", None, 30000)
    assert (taken, woke) == ([], set())


def test_a_wait_with_no_take_behind_it_names_the_task_it_saw(queue):
    queue.enqueue(jobs.add.new_job((1, 2), {}))
    taken, woke, cursors = wake_and_take(queue, ["boom", "add"], {}, {}, 5000, "w1", "w1", None, 30000)
    assert (taken, woke, cursors) == ([], {"add"}, {})  # nothing read: the next tick takes from add


def test_an_entry_another_worker_took_first_moves_the_cursor_so_the_next_wait_blocks(queue, redis_client):
    queue.enqueue(jobs.add.new_job((1, 2), {}))
    stale = {keys.stream("upnext", "add"): "0-0"}
    ((first, _),) = queue.take("w2", "w2", {"add": 1})
    taken, woke, cursors = wake_and_take(queue, ["add"], {"add": 4}, stale, 5000, "w1", "w1", None, 30000)
    assert woke == {"add"} and taken == []  # the XREAD saw the entry, which w2 holds
    assert cursors[keys.stream("upnext", "add")] == first.entry_id
    taken, woke, _ = wake_and_take(queue, ["add"], {"add": 4}, cursors, 50, "w1", "w1", None, 30000)
    assert (taken, woke) == ([], set())


def test_idle_workers_racing_for_the_same_jobs_run_each_once_then_wait_without_spinning(start_worker, redis_client):
    workers = [start_worker("tests.apps.jobs:worker") for _ in range(3)]
    results = [jobs.add.wait(i, 1, wait_timeout=30) for i in range(20)]  # one at a time: each wakes all three
    assert [r.value for r in results] == [i + 1 for i in range(20)]
    queue = jobs.worker.queue
    assert [queue.fields(r.job_id, "attempts", "deliveries") for r in results] == [["1", None]] * 20  # each ran once
    # One worker runs a job whose entry stays in the stream (pending) meanwhile: the others, whose
    # cursors may be older than that entry, must move past it rather than wake on it again and again.
    held = jobs.waits_for_gate.submit("held")
    wait_for(lambda: held.status() == "active", timeout=30, message="the gated job running")
    reads = calls(redis_client, "xread")
    time.sleep(IDLE_WINDOW_S)  # the measurement: how many waits the workers send in this window
    waits = calls(redis_client, "xread") - reads
    # Each waiting worker's XREAD times out once a second (FETCH_BLOCK_MS); one that spun would
    # send hundreds.
    assert waits <= len(workers) * (IDLE_WINDOW_S + 1), f"{waits} XREADs in {IDLE_WINDOW_S} s from 3 workers"
    redis_client.set("gate", 1)
    assert held.value(timeout=30) == "held"
    assert all(w.proc.poll() is None for w in workers)


def test_a_parent_that_lent_its_only_slot_gets_it_back_without_waiting_out_the_fetch_block(start_worker, queue):
    """Concurrency 1: the parent lends its slot to its child while it waits; once the child ends,
    the fetch loop's wait may hold that slot for its take. It must give it back promptly (a short
    block while a slot is lent), not after FETCH_BLOCK_MS (1 s)."""
    start_worker("tests.apps.jobs:worker", "--concurrency", "1")
    result = jobs.parent.wait(1, wait_timeout=60)
    (child_id,) = [j for j in queue.client.keys("upnext:{child}:job:*")]
    child_ended = float(queue.client.hget(child_id, "completed_at"))
    parent_ended = float(queue.get(result.job_id)["completed_at"])
    assert parent_ended - child_ended < 0.5, parent_ended - child_ended


def test_a_job_submitted_while_a_lone_job_runs_starts_without_waiting_for_it(start_worker, queue, redis_client):
    """An idle worker holds its next wait while a job it started alone runs (fetching._started),
    but only for LONE_HOLD_S: a job that keeps running does not keep the next one waiting."""
    start_worker("tests.apps.jobs:worker")
    first = jobs.waits_for_gate.submit("first")
    wait_for(lambda: queue.fields(first.job_id, "status") == ["active"], message="the first job running")
    assert jobs.add.wait(1, 2, wait_timeout=30).value == 3
    assert queue.fields(first.job_id, "status") == ["active"]  # the gate is still shut: it runs on
    redis_client.set("gate", 1)
    assert first.result(timeout=30).value == "first"


def blocked_in_xread(client) -> bool:
    return any(c["cmd"] == "xread" and "b" in c["flags"] for c in client.client_list())


def test_an_idle_worker_sends_its_next_wait_once_the_lone_job_it_started_was_written(start_worker, queue,
                                                                                      redis_client):
    """The hold itself (tests/apps/held.py: uncapped): the next wait's call would otherwise land
    between the job's own commands, on the worker's one thread."""
    start_worker("tests.apps.held:worker")
    # Idle first: a job submitted before the worker's first read would be started by a take of a
    # backlog, which does not hold.
    wait_for(lambda: blocked_in_xread(redis_client), message="the worker waiting")
    job = jobs.waits_for_gate.submit("lone")
    wait_for(lambda: queue.fields(job.job_id, "status") == ["active"], message="the job running")
    # What is checked is an absence (no wait sent): without the hold the fetch loop would send it
    # within milliseconds of starting the job; a tenth of a second is ample to see it.
    time.sleep(0.1)
    assert not blocked_in_xread(redis_client)
    redis_client.set("gate", 1)
    wait_for(lambda: blocked_in_xread(redis_client), message="the worker's next wait")
    assert queue.fields(job.job_id, "status") == ["complete"]  # written before the wait went out
