"""Starting runs through start.lua (leases, rate tokens, pause, fencing, the poison cap): of
known deliveries (a reclaim, a blocking fetch), or reading new entries and starting them in the
same call (a take). ``Queue.start`` and ``Queue.take`` are the entry points; routing-group leases
are taken around them (groups.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis

from upnext.store import keys
from upnext.store.limits import NO_LIMITS, Limits
from upnext.store.records import Delivery, by_function

if TYPE_CHECKING:
    from upnext.store.queue import Queue


def start_known(queue: Queue, consumer: str, worker_id: str, deliveries: Sequence[Delivery],
                limits: Mapping[str, Limits] | None, lease_ms: int) -> list[list[Any]]:
    """start.lua for known deliveries, a call per task, all in one pipeline; replies in order."""
    by_task = by_function(deliveries)
    pipe: Any = queue.pipeline() if len(by_task) > 1 else queue.client  # execute() only on a pipeline
    calls = [call_start(queue, pipe, consumer, worker_id, function, 0, limits, lease_ms,
                        [keys.job(queue.prefix, d.job_id) for d in group],
                        [v for d in group for v in (d.entry_id, d.job_id)])
             for function, group in by_task.items()]
    replies = dict(zip(by_task, pipe.execute() if len(by_task) > 1 else calls))
    positions = {f: iter(r) for f, r in replies.items()}
    return [next(positions[d.function]) for d in deliveries]


def take_all(queue: Queue, counts: Mapping[str, int], consumer: str, worker_id: str,
             limits: Mapping[str, Limits] | None, lease_ms: int) -> list[tuple[Delivery, list[Any]]]:
    """start.lua reading up to ``counts[task]`` new entries of each task and starting them."""
    if not counts:
        return []
    if len(counts) == 1 and not queue.cluster:  # the usual case: one call, no pipeline object to build
        ((function, count),) = counts.items()
        try:
            replies = [call_start(queue, queue.client, consumer, worker_id, function, count, limits, lease_ms, [], [])]
        except redis.ResponseError as exc:
            replies = [exc]
    else:
        pipe = queue.pipeline()
        for function, count in counts.items():
            call_start(queue, pipe, consumer, worker_id, function, count, limits, lease_ms, [], [])
        replies = pipe.execute(raise_on_error=False)
    if any(isinstance(r, redis.ResponseError) and "NOGROUP" in str(r) for r in replies):
        queue.ensure_groups(list(counts))
    for reply in replies:
        if isinstance(reply, Exception) and "NOGROUP" not in str(reply):
            raise reply
    return [(Delivery(function, entry_id, job_id), reply)
            for function, taken in zip(counts, replies) if not isinstance(taken, Exception)
            for entry_id, job_id, reply in taken]


Cursors = dict[str, str]  # stream -> the id of the last entry its group was given ('0-0': none)


def wake_and_take(queue: Queue, watch: Sequence[str], counts: Mapping[str, int], cursors: Cursors, block_ms: int,
                  consumer: str, worker_id: str, limits: Mapping[str, Limits] | None, lease_ms: int
                  ) -> tuple[list[tuple[Delivery, list[Any]]], set[str], Cursors]:
    """An idle worker's fetch in one round trip: XREAD blocks until one of the ``watch`` tasks'
    streams has an entry past its cursor (none of its group's workers has read it), and the takes
    of the ``counts`` tasks sent behind it in the same pipeline run the moment it returns, in
    Redis. Returns what the takes started, the tasks in which the XREAD saw an entry (none: it
    timed out), and the cursors the takes left.

    XREAD reads without claiming, so nothing is delivered to this worker but what the takes
    start (in priority order, as a take always does). A single Redis only: a pipeline of
    several tasks' calls spans hash slots."""
    owners = {s: f for f in watch for s in keys.streams(queue.prefix, f)}
    pipe = queue.pipeline()
    pipe.xread({s: cursors.get(s, "0-0") for s in owners}, count=1, block=block_ms)
    for function, count in counts.items():
        call_start(queue, pipe, consumer, worker_id, function, count, limits, lease_ms, [], [], cursor=True)
    woke, *replies = pipe.execute(raise_on_error=False)
    for reply in [woke, *replies]:
        if isinstance(reply, Exception):
            raise reply
    taken: list[tuple[Delivery, list[Any]]] = []
    moved: Cursors = {}
    for function, reply in zip(counts, replies):
        *entries, (_, *ids) = reply
        moved.update((stream, at) for stream, at in zip(keys.streams(queue.prefix, function), ids) if at)
        taken += [(Delivery(function, entry_id, job_id), start) for entry_id, job_id, start in entries]
    return taken, {owners[stream] for stream, _ in woke or ()}, moved


def call_start(queue: Queue, client: Any, consumer: str, worker_id: str, function: str, read: int,
               limits: Mapping[str, Limits] | None, lease_ms: int, job_keys: list[str], entries: list[str],
               cursor: bool = False) -> Any:
    """One start.lua call of one task: ``read`` new entries (and the cursor, see start.lua), or
    the known ``entries``."""
    limit = (limits or {}).get(function, NO_LIMITS)
    return queue.scripts.start(
        keys=[keys.stream(queue.prefix, function), keys.scheduled(queue.prefix, function),
              keys.leases(queue.prefix, function), keys.rate(queue.prefix, function),
              keys.paused(queue.prefix, function), *job_keys],
        args=[consumer, worker_id, queue.max_deliveries, limit.max_concurrency, lease_ms, limit.rate_count,
              limit.rate_period_s or 1, queue.stream_maxlen, read, keys.job_prefix(queue.prefix, function),
              function, queue.job_ttl_s, "1" if queue.stats else "0", *(["1"] if cursor else entries)],
        client=client)
