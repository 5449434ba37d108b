"""What one Prometheus scrape reads (upnext/metrics.py turns it into metric families): per function
the stats totals, the queue depth by state, the oldest queued job's age and the pause flag, plus
the live workers and their slots. Read-only.

Bounded: five pipelined round trips whose size grows with the number of functions and workers,
never with the number of jobs (XLEN, ZCARD, ZCOUNT, XINFO GROUPS and one XRANGE ... COUNT 1 are
O(1) or O(log n) each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from upnext.store import keys
from upnext.store.depths import OTHER_LEVELS, priority_depths
from upnext.store.queue import Queue
from upnext.store.stats import Counts

PER_FUNCTION = 7  # commands per function in the second round trip (_depths)


@dataclass
class FunctionGauges:
    function: str
    total: Counts
    depth: dict[str, int]  # queued, active, scheduled (not yet due), due, failed
    oldest_age_s: float  # the oldest job waiting to start (queued, or scheduled and due); 0 when none
    paused: bool


@dataclass
class Scrape:
    functions: list[FunctionGauges] = field(default_factory=list)
    workers: int = 0
    slots_busy: int = 0
    slots_free: int = 0


def read_scrape(queue: Queue) -> Scrape:
    """Everything one scrape exports, as of Redis's clock now."""
    pipe = queue.pipeline()
    pipe.time()
    pipe.hkeys(keys.functions(queue.prefix))
    pipe.smembers(keys.worker_ids(queue.prefix))
    pipe.smembers(keys.paused_set(queue.prefix))
    (seconds, micros), registered, worker_ids, paused = pipe.execute()
    now_s = seconds + micros / 1e6
    names = sorted(set(cast(list[str], registered)) | cast(set[str], paused))
    workers = sorted(cast(set[str], worker_ids))
    records, replies = _depths(queue, names, workers, now_s)
    levels = priority_depths(queue, names)  # the high and low priority streams: one more round trip
    gauges = [_gauges(name, reply, name in paused, now_s, levels[name]) for name, reply in zip(names, replies)]

    _oldest_queued(queue, gauges, replies, now_s)
    scrape = Scrape(gauges)
    for record in records:
        scrape.workers += 1
        busy = int(record.get("active", 0))
        scrape.slots_busy += busy
        scrape.slots_free += max(int(record.get("concurrency", 0)) - busy, 0)
    return scrape


def _depths(queue: Queue, names: list[str], workers: list[str],
            now_s: float) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """The live workers' records and, per function, its PER_FUNCTION replies (one round trip)."""
    pipe = queue.pipeline()
    if workers:
        pipe.mget([keys.worker(queue.prefix, w) for w in workers])
    for name in names:
        stream, scheduled = keys.stream(queue.prefix, name), keys.scheduled(queue.prefix, name)
        pipe.hgetall(keys.stats_total(queue.prefix, name))
        pipe.xlen(stream)
        pipe.zcard(scheduled)
        pipe.zcount(scheduled, "-inf", now_s)
        pipe.zrange(scheduled, 0, 0, withscores=True)
        pipe.zcard(keys.failed(queue.prefix, name))
        pipe.xinfo_groups(stream)  # last: it alone may fail (no stream yet)
    replies = pipe.execute(raise_on_error=False)
    first = 1 if workers else 0
    for i, reply in enumerate(replies):
        if isinstance(reply, Exception) and (i < first or (i - first) % PER_FUNCTION != PER_FUNCTION - 1):
            raise reply
    records = [_record(raw) for raw in (replies[0] if workers else [])]
    return ([r for r in records if r is not None],
            [replies[first + PER_FUNCTION * i: first + PER_FUNCTION * (i + 1)] for i in range(len(names))])


def _record(raw: str | None) -> dict[str, Any] | None:
    """A live worker's heartbeat record; None for an expired one or one that is not ours."""
    try:
        record = json.loads(raw or "null")
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _group(reply: Any) -> dict[str, Any] | None:
    if isinstance(reply, Exception):
        return None
    return next((g for g in cast(list[dict[str, Any]], reply) if g.get("name") == keys.GROUP), None)


def _gauges(name: str, reply: list[Any], paused: bool, now_s: float, levels: tuple[int, int]) -> FunctionGauges:
    total, length, scheduled, due, first, failed, groups = reply
    group = _group(groups)
    pending = int(group["pending"]) if group else 0
    depth = {"queued": max(length - pending, 0) + levels[0], "active": pending + levels[1],
             "scheduled": scheduled - due, "due": due, "failed": failed}
    oldest = now_s - float(first[0][1]) if due and first else 0.0
    return FunctionGauges(name, Counts.parse(total), depth, max(oldest, 0.0), paused)


def _oldest_queued(queue: Queue, gauges: list[FunctionGauges], replies: list[list[Any]], now_s: float) -> None:
    """The first entry after each group's last delivered one is the oldest queued job of its
    stream: its id holds the ms it was added. One round trip for the normal streams, one more for
    the high and low ones' groups; only for functions with queued jobs."""
    waiting = [(g, _group(r[-1])) for g, r in zip(gauges, replies) if g.depth["queued"]]
    if not waiting:
        return
    pipe = queue.pipeline()
    for g, _ in waiting:
        for level in OTHER_LEVELS:
            pipe.xinfo_groups(keys.stream(queue.prefix, g.function, level))
    others = iter(pipe.execute(raise_on_error=False))
    reads = [(g, keys.stream(queue.prefix, g.function, level), group) for g, normal in waiting
             for level, group in [(keys.NORMAL, normal), *((level, _group(next(others))) for level in OTHER_LEVELS)]
             if level == keys.NORMAL or group]
    pipe = queue.pipeline()
    for _, stream, group in reads:
        after = str(group["last-delivered-id"]) if group else "0-0"
        pipe.xrange(stream, f"({after}", "+", count=1)
    for (g, _, _), entries in zip(reads, pipe.execute()):
        if entries:
            added_s = int(str(entries[0][0]).split("-")[0]) / 1000
            g.oldest_age_s = max(g.oldest_age_s, now_s - added_s)
