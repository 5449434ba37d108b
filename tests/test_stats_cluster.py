"""stats and the Prometheus scrape read a Redis Cluster: every command names one function's keys
(or the workers' and paused registries), so none spans two slots."""

from __future__ import annotations

import json

from tests.test_cluster import cluster_url  # noqa: F401  (the three-master cluster fixture)
from upnext.metrics import UpnextCollector
from upnext.store import keys
from upnext.store.connection import connect
from upnext.store.queue import Queue
from upnext.store.records import Completion
from upnext.store.scrape import read_scrape
from upnext.store.stats import read_stats
from upnext.task import build_job


def test_stats_and_a_scrape_work_on_a_redis_cluster(cluster_url):  # noqa: F811
    client = connect(cluster_url)
    client.flushall()
    queue = Queue(client)
    record = {"id": "w1", "concurrency": 4, "active": 1, "functions": ["fn", "other"]}
    queue.registry.register("w1", json.dumps(record), 60, {"fn": "{}", "other": "{}"})
    queue.enqueue_many([build_job("fn", "[]", "{}") for _ in range(3)] + [build_job("other", "[]", "{}")])
    ((delivery, _),) = queue.take("w1", "w1", {"fn": 1})
    assert queue.settle("w1", [Completion(delivery, "complete", run_s=0.2)]) == ["ok"]
    client.sadd(keys.paused_set("upnext"), "other")
    step, found = read_stats(queue, 3600)
    assert step == 60 and [(s.function, s.window.counters["completed"]) for s in found] == [("fn", 1), ("other", 0)]
    scrape = read_scrape(queue)
    depth = {g.function: (g.depth["queued"], g.paused, g.oldest_age_s >= 0) for g in scrape.functions}
    assert depth == {"fn": (2, False, True), "other": (1, True, True)}
    assert (scrape.workers, scrape.slots_busy, scrape.slots_free) == (1, 1, 3)
    names = {family.name for family in UpnextCollector(queue).collect()}
    assert "upnext_queue_oldest_age_seconds" in names
