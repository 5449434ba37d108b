"""Pause / resume a function (SPEC §9): its jobs stay queued, submits are accepted, no worker
starts another of its jobs, running ones finish; a paused cron keeps its schedule and on resume
follows its missed_run_policy. Queue-level tests here; real worker processes further down."""

from __future__ import annotations

import pytest

from tests.test_queue import F, G, P, enqueue, pending, record, stream_ids
from upnext.store import keys


# -- start.lua: the flag is checked where a job starts ----------------------------------------
def test_an_entry_fetched_just_before_the_pause_is_handed_back_unstarted(queue, redis_client):
    job_id = enqueue(queue)
    (delivery,) = queue.fetch("c1", [F], 1, None)
    redis_client.set(keys.paused(P, F), "1000.0")  # the pause lands between the fetch and the start
    assert queue.start("c1", "w1", [delivery]) == [["paused"]]
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["attempts"], rec.get("deliveries", "0")) == ("queued", "0", "0")
    assert stream_ids(redis_client) == [job_id] and pending(redis_client) == []  # waiting, held by nobody
    redis_client.delete(keys.paused(P, F))
    (again,) = queue.fetch("c2", [F], 1, None)
    assert queue.start("c2", "w1", [again])[0][:2] == ["run", 1]


def test_handing_back_a_paused_job_is_no_delivery_for_the_poison_cap(queue, redis_client):
    job_id = enqueue(queue)
    redis_client.set(keys.paused(P, F), "1000.0")
    for n in range(queue.max_deliveries + 2):
        (delivery,) = queue.fetch(f"c{n}", [F], 1, None)
        assert queue.start(f"c{n}", "w1", [delivery]) == [["paused"]]
    redis_client.delete(keys.paused(P, F))
    (delivery,) = queue.fetch("last", [F], 1, None)
    assert queue.start("last", "w1", [delivery])[0][:2] == ["run", 1]
    assert record(redis_client, job_id)["deliveries"] == "1"


def test_take_reads_no_entry_of_a_paused_function(queue, redis_client):
    paused, running = enqueue(queue), enqueue(queue, function=G)
    redis_client.set(keys.paused(P, F), "1000.0")
    taken = queue.take("c1", "w1", {F: 4, G: 4})
    assert [(d.job_id, reply[0]) for d, reply in taken] == [(running, "run")]
    assert stream_ids(redis_client) == [paused] and pending(redis_client) == []


# -- the store calls: pause, resume, is_paused, paused ---------------------------------------
def test_pause_sets_the_flag_and_the_set_and_resume_clears_both(queue, redis_client):
    pauses = queue.pauses
    assert pauses.pause(F) is True and pauses.pause(F) is False  # already paused: kept as it was
    assert float(redis_client.get(keys.paused(P, F))) == pytest.approx(queue.redis_time(), abs=5)
    assert pauses.is_paused(F) and not pauses.is_paused(G)
    assert pauses.paused() == {F}
    assert pauses.resume(F) is True and pauses.resume(F) is False
    assert not pauses.is_paused(F) and pauses.paused() == set()
    assert redis_client.exists(keys.paused(P, F), keys.paused_set(P)) == 0
