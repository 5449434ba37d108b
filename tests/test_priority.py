"""Priorities (SPEC §2c): ``task.options(priority="high"|"normal"|"low")``, served strictly (high
before normal before low), FIFO within a level; one stream per level under the task's hash tag."""

from __future__ import annotations

import pytest

import upnext
from tests.apps.queueing import gate, noted
from tests.workers import wait_for
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.jobdetail import read_detail
from upnext.store.overview import Overview
from upnext.store.records import Completion, NewJob
from upnext.store.scrape import read_scrape

APP = "tests.apps.queueing:worker"
BACKLOG = [("low", "l1"), ("normal", "n1"), ("high", "h1"), ("low", "l2"), (upnext.Priority.HIGH, "h2"),
           ("normal", "n2"), ("high", "h3"), ("low", "l3")]


def test_a_backlog_runs_high_then_normal_then_low_fifo_within_each_level(redis_client, start_worker):
    held = gate.submit()
    start_worker(APP)
    wait_for(lambda: held.status() == "active", timeout=30, message="the gate job holding the only slot")
    futures = [noted.options(priority=level).submit(tag) for level, tag in BACKLOG]
    redis_client.set("gate:open", 1)
    assert [f.value(timeout=60) for f in futures] == [tag for _, tag in BACKLOG]
    assert redis_client.lrange("ledger:noted", 0, -1) == ["h1", "h2", "h3", "n1", "n2", "l1", "l2", "l3"]


def _job(queue, priority: str, **fields) -> str:
    job_id = new_job_id("fn")
    queue.enqueue(NewJob(job_id, "[]", "{}", priority=priority, **fields))
    return job_id


def _taken(queue, count: int = 1) -> list[str]:
    return [d.job_id for d, reply in queue.take("w1", "w1", {"fn": count}) if reply[0] == "run"]


def test_each_level_has_its_own_stream_and_normal_is_the_plain_one(queue, redis_client):
    jobs = {level: _job(queue, level) for level in keys.LEVELS}
    assert redis_client.keys("upnext:{fn}:stream*") and {
        level: redis_client.xrange(keys.stream("upnext", "fn", level))[0][1]["id"] for level in keys.LEVELS} == jobs
    assert keys.stream("upnext", "fn", "normal") == "upnext:{fn}:stream"
    assert queue.fields(jobs["high"], "priority") == ["high"] and queue.fields(jobs["normal"], "priority") == [None]
    assert [read_detail(queue, jobs[level]).to_dict()["priority"] for level in keys.LEVELS] == list(keys.LEVELS)
    assert _taken(queue, 3) == [jobs["high"], jobs["normal"], jobs["low"]]


def test_a_retry_a_release_and_a_delayed_job_go_back_to_their_own_level(queue):
    low, high = _job(queue, "low"), _job(queue, "high", delay_s=0.05)
    ((delivery, _),) = queue.take("w1", "w1", {"fn": 1})
    assert delivery.job_id == low and delivery.entry_id.startswith("low/")
    assert queue.settle("w1", [Completion(delivery, "retry", delay_s=0)]) == ["ok"]
    normal = _job(queue, "normal")
    wait_for(lambda: queue.promote("fn")[0] == 1, message="the delayed high job promoted")
    assert _taken(queue) == [high]
    ((delivery, _),) = queue.take("w1", "w1", {"fn": 1})
    assert delivery.job_id == normal and queue.release("w1", [delivery], started=True) == ["ok"]
    assert _taken(queue, 2) == [normal, low]


def test_a_dead_workers_entries_are_reclaimed_from_every_level_highest_first(queue):
    low, high = _job(queue, "low"), _job(queue, "high")
    assert len(queue.take("dead", "dead", {"fn": 2})) == 2
    got = queue.reclaim("w2", "fn", 0, 10)
    assert [d.job_id for d in got] == [high, low] and got[0].entry_id.startswith("high/")
    assert [r[0] for r in queue.start("w2", "w2", got)] == ["run", "run"]
    assert queue.settle("w2", [Completion(d, "complete") for d in got]) == ["ok", "ok"]


def test_purge_counts_and_the_views_cover_every_level(queue, redis_client):
    queue.registry.register("w1", '{"id": "w1"}', 60, {"fn": "{}"})
    for level in ("high", "high", "normal", "low"):
        _job(queue, level)
    queue.take("w1", "w1", {"fn": 1})  # one high job running
    ghost = queue.fetch_counts("ghost", {"fn": 1, "other": 1})  # a worker with no record: a dead one
    assert [keys.split_token(d.entry_id)[0] for d in ghost] == ["high", "normal", "low"]
    _job(queue, "low")
    assert queue.backlog(["fn"]) == 5
    (row,) = Overview(queue).read()["functions"]
    assert (row["queued"], row["active"], row["awaiting_reclaim"]) == (1, 1, 3)
    (gauges,) = read_scrape(queue).functions
    assert (gauges.depth["queued"], gauges.depth["active"]) == (1, 4)
    assert Admin(queue).purge("fn") == 1
    _job(queue, "low")
    redis_client.delete(keys.functions("upnext"), keys.stream("upnext", "fn"))
    assert Admin(queue).is_known("fn")  # only its low stream holds a job now
    queue.ensure_groups(["fn"])
    assert queue.backlog(["fn"]) == 4  # high: 2 held; low: the ghost's and the new one


@pytest.mark.parametrize("bad", ["urgent", 1, None, "HIGH"])
def test_a_bad_priority_is_refused_naming_the_argument_and_the_allowed_values(bad):
    with pytest.raises(ValueError, match=r"noted.options\(\): priority must be one of 'high', 'normal', 'low'"):
        noted.options(priority=bad)


def test_the_priority_members_equal_the_option_strings():
    assert [p.value for p in upnext.Priority] == ["high", "normal", "low"]
    assert upnext.Priority.LOW == "low" and noted.options(priority=upnext.Priority.LOW).priority == "low"


def test_the_oldest_queued_age_counts_the_high_and_low_streams_too(queue, redis_client):
    queue.registry.register("w1", '{"id": "w1"}', 60, {"aged": "{}"})
    queue.ensure_groups(["aged"])
    minute_ago_ms = int((queue.redis_time() - 60) * 1000)
    redis_client.xadd(keys.stream("upnext", "aged", "low"), {"id": new_job_id("aged")}, id=f"{minute_ago_ms}-0")
    (gauges,) = read_scrape(queue).functions
    assert gauges.depth["queued"] == 1 and 59 <= gauges.oldest_age_s < 120


def test_a_paused_tasks_entry_handed_back_stays_in_its_level(queue, redis_client):
    high = _job(queue, "high")
    (delivery,) = queue.fetch("w1", ["fn"], 1, None)
    queue.pauses.pause("fn")
    assert queue.start("w1", "w1", [delivery]) == [["paused"]]
    assert [e[1]["id"] for e in redis_client.xrange(keys.stream("upnext", "fn", "high"))] == [high]
    queue.pauses.resume("fn")
    assert _taken(queue) == [high]


def test_drain_runs_a_backlog_in_priority_order(redis_client):
    app = upnext.Worker("drained")
    ran: list[str] = []

    @app.task
    def step(tag: str) -> None:
        ran.append(tag)

    for level, tag in BACKLOG:
        step.options(priority=level).submit(tag)
    assert upnext.drain(app) == len(BACKLOG)
    assert ran == ["h1", "h2", "h3", "n1", "n2", "l1", "l2", "l3"]
