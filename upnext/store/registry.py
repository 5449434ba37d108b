"""The cluster's registrations: worker heartbeats, functions and event handlers, each worker's
consumer in the task groups (forgotten at a clean stop, swept after a crash), and each cron's
cursor and lock. Written by workers, read by senders and the operator commands."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol, cast

import redis

from upnext.store import keys
from upnext.store.scripts import Scripts


class Connected(Protocol):
    """What the registry needs of its Queue (a Protocol, so this module does not import it)."""

    client: redis.Redis
    prefix: str
    scripts: Scripts
    stream_maxlen: int

    def pipeline(self) -> Any: ...


class CronState(NamedTuple):
    """A cron's cursor hash (store/keys.py): what cron_fire.lua compares, and what operators see."""

    next_at: str = ""  # '' until a worker seeded it
    schedule: str = ""
    resumed_at: float = 0.0
    last_job: str = ""
    skipped: int = 0
    last_skipped_at: float = 0.0


class Fired(NamedTuple):
    """What one cron_fire call did beyond moving the cursor."""

    waited_on: str  # the unfinished run the skipped instants waited on ('' when none was skipped)
    skipped: list[float]


class Registry:
    def __init__(self, queue: Connected):
        self.queue = queue

    def register(self, worker_id: str, info: str, ttl_s: int, functions: dict[str, str] | None = None) -> set[str]:
        """Heartbeat (one round trip): this worker's record, expiring (its liveness), its copy in
        the last-seen hash (kept after a crash, so ``status`` shows the worker dead), its id in
        the worker set and, at start, its functions. Returns the paused functions (pause.py),
        read in the same round trip: the worker fetches none of them."""
        pipe = self.queue.pipeline()
        pipe.set(keys.worker(self.queue.prefix, worker_id), info, ex=ttl_s)
        pipe.hset(keys.last_seen(self.queue.prefix), worker_id, info)
        pipe.sadd(keys.worker_ids(self.queue.prefix), worker_id)
        if functions:
            pipe.hset(keys.functions(self.queue.prefix), mapping=functions)
        pipe.smembers(keys.paused_set(self.queue.prefix))
        return cast(set[str], pipe.execute()[-1])

    def unregister(self, worker_id: str) -> None:
        """A clean stop: the worker leaves no record (it is gone, not dead)."""
        self.queue.pipeline().delete(keys.worker(self.queue.prefix, worker_id)).srem(
            keys.worker_ids(self.queue.prefix), worker_id).hdel(keys.last_seen(self.queue.prefix), worker_id).execute()

    def prune_workers(self, keep_dead_s: float) -> list[str]:
        """Forget workers whose heartbeat expired (they died): their ids at once, their last-seen
        records once they have been silent for ``keep_dead_s`` (until then ``status`` lists them
        as dead). Returns the ids removed from the worker set."""
        prefix = self.queue.prefix
        pipe = self.queue.pipeline()
        pipe.smembers(keys.worker_ids(prefix))
        pipe.hgetall(keys.last_seen(prefix))
        ids, seen = cast(tuple[set[str], dict[str, str]], pipe.execute())  # decode_responses
        everyone = sorted(ids | set(seen))
        if not everyone:
            return []
        alive = self.queue.client.mget([keys.worker(prefix, w) for w in everyone])
        dead = {w for w, record in zip(everyone, alive) if record is None}
        gone = sorted(dead & ids)
        forgotten = [w for w in dead & set(seen) if _silent_for(seen[w]) > keep_dead_s]
        pipe = self.queue.pipeline()
        if gone:
            pipe.srem(keys.worker_ids(prefix), *gone)
        if forgotten:
            pipe.hdel(keys.last_seen(prefix), *forgotten)
        pipe.execute()
        return gone

    def forget_consumer(self, consumer: str, functions: Iterable[str]) -> None:
        """Delete our consumer from each group, but only where it holds no pending entry."""
        for stream in (s for function in functions for s in keys.streams(self.queue.prefix, function)):
            try:
                if self.queue.client.xpending_range(stream, keys.GROUP, "-", "+", 1, consumername=consumer):
                    continue
                self.queue.client.xgroup_delconsumer(stream, keys.GROUP, consumer)
            except redis.ResponseError:
                continue

    def sweep_consumers(self, functions: Sequence[str], min_idle_ms: int) -> list[str]:
        """Delete consumers with no pending entry, idle for ``min_idle_ms``, from each task's group
        (those of dead workers; a live one idle that long is simply re-made by its next read)."""
        pipe = self.queue.pipeline()
        for stream in (s for function in functions for s in keys.streams(self.queue.prefix, function)):
            self.queue.scripts.sweep(keys=[stream], args=[min_idle_ms], client=pipe)
        return sorted({name for names in pipe.execute() for name in names})

    def cron_cursors(self, functions: Sequence[str]) -> list[tuple[str, str, float]]:
        """(next_at, schedule, resumed_at) of each cron; ('', '', 0.0) where it has no cursor yet.
        ``resumed_at``: when it was last resumed from a pause (0.0: never); its instants before
        then passed while it was paused (resume.lua)."""
        return [(c.next_at, c.schedule, c.resumed_at) for c in self.cron_states(functions)]

    def cron_states(self, cron_ids: Sequence[str]) -> list[CronState]:
        """The cursor of each cron (a declared cron's function, or ``<function>:<name>``), as
        cron_fire.lua needs it and ``cron list`` shows it."""
        pipe = self.queue.pipeline()
        for cron_id in cron_ids:
            pipe.hmget(keys.cron(self.queue.prefix, cron_id), *CronState._fields)
        return [CronState(n or "", s or "", float(r or 0), j or "", int(k or 0), float(a or 0))
                for n, s, r, j, k, a in pipe.execute()]

    def cron_fire(self, function: str, expected: str, next_at: float, schedule: str,
                  runs: Sequence[tuple[str, float]]) -> bool:
        """Enqueue ``runs`` (job id, instant) and move the cursor, unless another worker did or the
        cron is paused (then its cursor stays where it is)."""
        return self.fire(function, CronState(expected, schedule), next_at, schedule, runs) is not None

    def fire(self, cron_id: str, state: CronState, next_at: float, schedule: str, runs: Sequence[tuple[str, float]],
             call: tuple[str, str] = ("[]", "{}"), overlap: bool = True) -> Fired | None:
        """Enqueue ``runs`` (job id, instant), each calling its function with ``call`` (args and
        kwargs JSON), and move the cursor planned from ``state``; None when another worker did,
        the cron is paused or it was removed. With ``overlap=False`` the instants that came while
        the cron's previous run had not ended are skipped (``Fired.skipped``)."""
        prefix, function = self.queue.prefix, cron_id.partition(":")[0]
        cursor = keys.cron(prefix, cron_id)
        previous = keys.job(prefix, state.last_job) if state.last_job else cursor
        reply = self.queue.scripts.cron_fire(
            keys=[cursor, keys.stream(prefix, function), keys.paused(prefix, function), previous,
                  *(keys.job(prefix, job_id) for job_id, _ in runs)],
            args=[state.next_at, repr(next_at), schedule, self.queue.stream_maxlen, function, *call,
                  "1" if overlap else "0", "1" if ":" in cron_id else "0",
                  *(v for job_id, instant in runs for v in (job_id, repr(instant)))])
        if not reply:
            return None
        return Fired(waited_on=reply[1], skipped=[float(i) for i in reply[2:]])

    def lead(self, owner: str, functions: Sequence[str], ttl_ms: int) -> list[str]:
        """Take or keep the lock of each cron; returns the crons ``owner`` leads now."""
        pipe = self.queue.pipeline()
        for function in functions:
            self.queue.scripts.lock(keys=[keys.cron_lock(self.queue.prefix, function)], args=[owner, ttl_ms],
                                    client=pipe)
        return [f for f, held in zip(functions, pipe.execute()) if held]

    def add_handlers(self, handlers: dict[str, list[str]]) -> None:
        pipe = self.queue.pipeline()
        for event, names in handlers.items():
            pipe.sadd(keys.event_handlers(self.queue.prefix, event), *names)
        if handlers:
            pipe.sadd(keys.event_names(self.queue.prefix), *handlers)
        pipe.execute()

    def handlers(self, event: str) -> list[str]:
        return sorted(cast(set[str], self.queue.client.smembers(keys.event_handlers(self.queue.prefix, event))))

    def events(self) -> dict[str, list[str]]:
        """Every event a worker registered handlers for -> its handler task names, sorted."""
        names = sorted(cast(set[str], self.queue.client.smembers(keys.event_names(self.queue.prefix))))
        pipe = self.queue.pipeline()
        for name in names:
            pipe.smembers(keys.event_handlers(self.queue.prefix, name))
        return {name: sorted(handlers) for name, handlers in zip(names, pipe.execute() if names else [])}


def _silent_for(record: str) -> float:
    """Seconds since a last-seen record's heartbeat (by this machine's clock; a record that is
    not one of ours counts as long silent)."""
    try:
        return time.time() - float(json.loads(record)["heartbeat_at"])
    except (ValueError, TypeError, KeyError):
        return float("inf")
