"""The job operations of producers and workers: one method per queue operation (the values they
pass are in records.py; the start.lua calls in starting.py and the finish/retry calls in
settling.py; operator commands are in admin.py; worker registrations and consumer housekeeping in
registry.py).

Vocabulary (the same in Lua file names and log events): enqueue, fetch, reclaim, start,
finish, retry, release, promote, cancel, annotate. Multi-key changes are Lua scripts;
batches are pipelined so the hot path costs a few round trips per batch, not per job.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, cast

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError
from redis.typing import KeyT, StreamIdT

from upnext.job import function_of
from upnext.store import bounds, groups, keys, reclaiming, settling, starting
from upnext.store.clusterreads import BlockingReads
from upnext.store.connection import NodePipelines, OwnConnectionPipeline, ReadReply, ScriptPipeline, deliveries_of
from upnext.store.limits import Limits
from upnext.store.pause import Pauses
from upnext.store.records import Completion, Delivery, NewJob, QueueBound, by_function
from upnext.store.registry import Registry
from upnext.store.scripts import Scripts
from upnext.store.waiter import Waiter

CLUSTER_POLL_MS = 50
ENQUEUE_CHUNK = 200  # jobs per enqueue.lua call: keeps each call short for Redis

class Queue:
    """Job operations for one Redis and one key prefix."""

    def __init__(self, client: redis.Redis, prefix: str = "upnext", *, job_ttl_s: int = 86400,
                 stream_maxlen: int = 0, max_deliveries: int = 5, max_payload_bytes: int = 1048576,
                 max_result_bytes: int = 1048576, max_checkpoint_bytes: int = 1048576,
                 max_log_entry_bytes: int = 8192, max_log_entries: int = 1000, completed_ttl_s: int | None = None,
                 stats: bool = True):
        self.client = client
        self.prefix = prefix
        self.job_ttl_s = job_ttl_s
        self.completed_ttl_s = completed_ttl_s or job_ttl_s  # RQ's result_ttl beside failure_ttl
        self.stats = stats
        self.stream_maxlen = stream_maxlen
        self.max_deliveries = max_deliveries
        self.max_payload_bytes = max_payload_bytes
        # Caps of what a running job stores, checked by its JobContext (the log count by annotate.lua).
        self.max_result_bytes = max_result_bytes
        self.max_checkpoint_bytes = max_checkpoint_bytes
        self.max_log_entry_bytes = max_log_entry_bytes
        self.max_log_entries = max_log_entries
        self.scripts = Scripts(client)
        self.cluster = isinstance(client, RedisCluster)
        self.registry = Registry(self)
        self.pauses = Pauses(self)
        self.waiter = Waiter(self)
        self._blocking: BlockingReads | None = None

    def dedicated(self) -> Queue:
        """This queue on a connection of its own, for the calls of one loop: no pool checkout
        (with its readiness poll) per command. Redis Cluster keeps its own client."""
        if self.cluster:
            return self
        return self._twin(redis.Redis(connection_pool=self.client.connection_pool, single_connection_client=True),
                          self.scripts)

    def with_client(self, client: redis.Redis) -> Queue:
        """This queue's settings on another client (e.g. one from ``connect(url, tolerant=True)``)."""
        return self._twin(client, Scripts(client))

    def _twin(self, client: redis.Redis, scripts: Scripts) -> Queue:
        twin = copy.copy(self)
        twin.client, twin.scripts = client, scripts
        twin.cluster = isinstance(client, RedisCluster)
        twin.waiter = Waiter(twin)
        twin._blocking = None
        return twin

    def redis_time(self) -> float:
        """Redis's clock (unix seconds): every schedule comparison uses it, never the local clock."""
        seconds, micros = self.client.time()
        return float(seconds) + micros / 1_000_000

    def pipeline(self) -> Any:
        """A non-transactional pipeline (one round trip), or its stand-in on Redis Cluster (one
        round trip too: a pipeline per node, see NodePipelines)."""
        if self.cluster:
            return NodePipelines(cast(RedisCluster, self.client), self.scripts)
        if getattr(self.client, "connection", None) is not None:  # a dedicated() queue's own connection
            return OwnConnectionPipeline(self.client)
        return ScriptPipeline(self.client)

    # -- producers ---------------------------------------------------------------------
    def enqueue(self, new: NewJob, watch: bool = False) -> str:
        """Write one job. ``watch``: its submitter waits for it next (``Waiter.enqueue``: its end
        is pushed onto its notify list)."""
        return self.waiter.enqueue(new) if watch else self.enqueue_many([new])[0]

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[str]:
        """Write jobs with one enqueue.lua call per task and chunk, all in one pipeline; returns the
        id holding each (a live duplicate's id on dedup). Every job is checked first: one over
        max_payload_bytes fails the call and writes nothing. A task with a ``max_queued`` cap gets
        one call for all its jobs, so they are written all or none (QueueFull, see bounds.py)."""
        for new in jobs:
            size = len(new.args.encode()) + len(new.kwargs.encode())
            if size > self.max_payload_bytes:
                raise ValueError(f"{function_of(new.job_id)}(): arguments are {size} bytes encoded, over "
                                 f"max_payload_bytes={self.max_payload_bytes}; pass a reference (a key, a URL)")
        caps = bounds.bounds_of(self.client, self.prefix, jobs)
        chunks = [(function, group[i:i + step]) for function, group in by_function(jobs).items()
                  for step in [len(group) if caps[function].max_queued else ENQUEUE_CHUNK]
                  for i in range(0, len(group), step)]
        # A single submit: no pipeline object to build (but on Redis Cluster a NodePipelines, which
        # finds the slot from the first key where the cluster client would hash all 2n + 2 of them).
        if len(chunks) == 1 and not self.cluster:
            replies = [self._enqueue(self.client, *chunks[0], caps[chunks[0][0]])]
        else:
            pipe = self.pipeline()
            for function, chunk in chunks:
                self._enqueue(pipe, function, chunk, caps[function])
            replies = pipe.execute()
        for i, ((function, chunk), reply) in enumerate(zip(chunks, replies)):
            if bounds.is_full(reply):
                replies[i] = self._wait_for_room(function, chunk, caps[function], int(reply[1]))
        held = {new.job_id: holder for (_, chunk), reply in zip(chunks, replies) for new, holder in zip(chunk, reply)}
        return [held[new.job_id] for new in jobs]

    def _wait_for_room(self, function: str, chunk: Sequence[NewJob], bound: QueueBound, count: int) -> Any:
        """The task's queue was full: QueueFull, or (on_full="block") its jobs once there is room."""
        return bounds.wait_for_room(function, bound, len(chunk), count,
                                    lambda: self._enqueue(self.client, function, chunk, bound))

    def _enqueue(self, client: Any, function: str, chunk: Sequence[NewJob], bound: QueueBound) -> Any:
        job_keys = [keys.stream(self.prefix, function), keys.scheduled(self.prefix, function)]
        job_prefix = keys.job_prefix(self.prefix, function)
        args: list[Any] = [self.stream_maxlen, bound.max_queued, job_prefix]
        for new in chunk:
            job_keys += [job_prefix + new.job_id, keys.dedup(self.prefix, function, new.key)]
            args += [new.job_id, new.delay_s, new.key, new.args, new.kwargs, new.parent_id, new.root_id or new.job_id,
                     new.expires_s, new.priority, "1" if new.notify else ""]
        return self.scripts.enqueue(keys=job_keys, args=args, client=client)

    def cancel(self, job_id: str) -> tuple[str, str | None]:
        """Returns ('cancelled', previous) | ('terminal', status) | ('missing', None)."""
        function = function_of(job_id)
        key, root_id = self.fields(job_id, "key", "root_id")
        root_id = "" if root_id in (None, job_id) else root_id
        reply = self.scripts.cancel(
            keys=[keys.job(self.prefix, job_id), keys.scheduled(self.prefix, function),
                  keys.logs(self.prefix, job_id), keys.dedup(self.prefix, function, key or ""),
                  keys.ended(self.prefix, function), keys.attempts(self.prefix, job_id),
                  keys.ended_key(self.prefix, function, key or ""),
                  keys.tree(self.prefix, function, root_id), keys.notify(self.prefix, job_id),
                  *self.stats_keys(function)],
            args=[job_id, self.job_ttl_s, keys.done_channel(self.prefix, job_id), root_id])
        return reply[0], (reply[1] if len(reply) > 1 else None)

    def stats_keys(self, function: str) -> list[str]:
        """The stats hashes a finishing call of ``function`` writes now (minute, hour, total), or
        none when the stats setting is off (the scripts then skip their stats writes)."""
        if not self.stats:
            return []
        now = int(time.time())
        return [keys.stats_minute(self.prefix, function, now // 60),
                keys.stats_hour(self.prefix, function, now // 3600), keys.stats_total(self.prefix, function)]

    def dedup_key_of(self, job_id: str) -> str:
        """The key of the idempotency key this job holds (any key of its task when it has none)."""
        key = cast(str | None, self.client.hget(keys.job(self.prefix, job_id), "key")) or ""
        return keys.dedup(self.prefix, function_of(job_id), key)

    # -- reading jobs ------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, str] | None:
        record = cast(dict[str, str], self.client.hgetall(keys.job(self.prefix, job_id)))
        return record or None

    def fields(self, job_id: str, *names: str) -> list[str | None]:
        """Some fields of a job's record (None for each that is not there)."""
        return cast(list[str | None], self.client.hmget(keys.job(self.prefix, job_id), list(names)))

    def logs(self, job_id: str) -> list[str]:
        return cast(list[str], self.client.lrange(keys.logs(self.prefix, job_id), 0, -1))

    def wait(self, job_id: str, timeout_s: float | None) -> dict[str, str] | None:
        """Block until the job is terminal (or ``timeout_s`` passes); return its record (see Waiter)."""
        return self.waiter.wait(job_id, timeout_s)

    def wait_any(self, job_ids: Sequence[str], timeout_s: float | None) -> str | None:
        """Block until one of the jobs is terminal; return its id (None if ``timeout_s`` passed)."""
        return self.waiter.wait_any(job_ids, timeout_s)

    # -- workers: fetching ---------------------------------------------------------------
    def ensure_groups(self, functions: Iterable[str]) -> None:
        """The group of every priority's stream of each task (so one XREADGROUP can name them all)."""
        for function in functions:
            for stream in keys.streams(self.prefix, function):
                try:
                    self.client.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    def fetch(self, consumer: str, functions: Sequence[str], count: int, block_ms: int | None) -> list[Delivery]:
        """XREADGROUP new entries; ``count`` applies per stream (Redis semantics: each priority's
        stream too), highest priority first."""
        if self.cluster and len(functions) > 1:
            return self._fetch_each(consumer, functions, count, block_ms)
        streams: dict[KeyT, StreamIdT] = {s: ">" for f in functions for s in keys.streams(self.prefix, f)}
        try:
            reply = cast(ReadReply, self.client.xreadgroup(keys.GROUP, consumer, streams, count=count, block=block_ms))
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # A stream or group missing (a priority's stream no submit made yet, a FLUSHALL):
            # make them all, then read once more (a submit may have made only the one it used).
            self.ensure_groups(functions)
            reply = cast(ReadReply, self.client.xreadgroup(keys.GROUP, consumer, streams, count=count, block=block_ms))
        return deliveries_of(reply)

    def _fetch_each(self, consumer: str, functions: Sequence[str], count: int, block_ms: int | None
                    ) -> list[Delivery]:
        """Redis Cluster: streams of different tasks live in different slots, so one XREADGROUP
        can't cover them: block on each task's streams side by side (clusterreads.py); where the
        ACL refuses that, read each without blocking, and pause briefly when all were empty."""
        if block_ms and self.blocking.supported:
            try:
                return self._read_blocking(consumer, functions, count, block_ms)
            except redis.exceptions.NoPermissionError:
                pass  # CLIENT ID or UNBLOCK refused: ``supported`` is now False, poll instead
        got = self.fetch_counts(consumer, {f: count for f in functions})
        if not got and block_ms:
            time.sleep(min(block_ms, CLUSTER_POLL_MS) / 1000)
        return got

    def _read_blocking(self, consumer: str, functions: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        """The blocking reads' entries; an error is raised only when no task returned entries
        (those would be stranded in our PEL), after the missing groups are made and the slot map
        is refreshed (MOVED: the slot went to another node)."""
        replies = self.blocking.read(consumer, functions, count, block_ms)
        got = [d for reply in replies if not isinstance(reply, Exception) for d in deliveries_of(reply)]
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if any("NOGROUP" in str(exc) for exc in errors):
            self.ensure_groups(functions)
        if any(isinstance(exc, AskError) for exc in errors):
            cast(Any, self.client).nodes_manager.initialize()
        others = [exc for exc in errors if "NOGROUP" not in str(exc) and not isinstance(exc, AskError)]
        if others and not got:
            raise others[0]
        return got

    @property
    def blocking(self) -> BlockingReads:
        """The fetch loop's blocking reads on Redis Cluster (made on first use)."""
        if self._blocking is None:
            self._blocking = BlockingReads(self)
        return self._blocking

    def fetch_counts(self, consumer: str, counts: Mapping[str, int]) -> list[Delivery]:
        """Non-blocking XREADGROUP of up to ``counts[task]`` new entries per task, pipelined."""
        if len(counts) == 1:
            ((function, count),) = counts.items()
            return self.fetch(consumer, [function], count, None)
        missing = [f for f in counts]  # read every task; again, once, those whose streams were missing
        got: list[Delivery] = []
        for _ in range(2):
            pipe = self.pipeline()
            for function in missing:
                pipe.xreadgroup(keys.GROUP, consumer, {s: ">" for s in keys.streams(self.prefix, function)},
                                count=counts[function])
            replies = pipe.execute(raise_on_error=False)
            got += [d for reply in replies if not isinstance(reply, Exception) for d in deliveries_of(reply)]
            missing = [f for f, r in zip(missing, replies) if isinstance(r, redis.ResponseError)]
            if not missing:
                break
            self.ensure_groups(missing)
        return got

    def reclaim(self, consumer: str, function: str, min_idle_ms: int, count: int, suspects: int = 1,
                running: Collection[str] = ()) -> list[Delivery]:
        """Take over entries idle past ``min_idle_ms`` (their worker died); see reclaiming.py."""
        return reclaiming.reclaim(self, consumer, function, min_idle_ms, count, suspects, running)

    def start(self, consumer: str, worker_id: str, deliveries: Sequence[Delivery],
              limits: Mapping[str, Limits] | None = None, lease_ms: int = 30000) -> list[list[Any]]:
        """Mark deliveries started (start.lua, which also takes leases and rate tokens), one call
        per task, all in one pipeline; routing-group leases first (groups.py), in calls of their
        own. A delivery its group refuses is handed back, reply ['busy']."""
        refused = groups.take_for(self, deliveries, limits, lease_ms)
        if refused:
            self.release(consumer, [d for d in deliveries if d in refused], started=False)
        ready = [d for d in deliveries if d not in refused]
        replies = iter(starting.start_known(self, consumer, worker_id, ready, limits, lease_ms) if ready else [])
        out = [["busy"] if d in refused else next(replies) for d in deliveries]
        groups.give_back(self, [d for d, reply in zip(deliveries, out) if reply[0] != "run"], limits)
        return out

    def take(self, consumer: str, worker_id: str, counts: Mapping[str, int],
             limits: Mapping[str, Limits] | None = None, lease_ms: int = 30000) -> list[tuple[Delivery, list[Any]]]:
        """Fetch and start in one round trip: start.lua reads up to ``counts[task]`` new entries
        of each task itself (never blocking) and starts them; returns each delivery with its
        start reply ('garbage' for an entry that named no job of its task: acked and deleted).
        A task in a routing group reads only as many entries as its group granted leases first."""
        reserved = groups.reserve(self, counts, limits, lease_ms)
        counts = {f: len(reserved[f]) if f in reserved else n for f, n in counts.items()}
        try:
            wanted = {f: n for f, n in counts.items() if n > 0}
            taken = starting.take_all(self, wanted, consumer, worker_id, limits, lease_ms)
        except BaseException:
            groups.swap(self, reserved, limits, [], lease_ms)
            raise
        groups.swap(self, reserved, limits, taken, lease_ms)
        return taken

    def wake_and_take(self, consumer: str, worker_id: str, watch: Sequence[str], counts: Mapping[str, int],
                      cursors: starting.Cursors, block_ms: int, limits: Mapping[str, Limits] | None = None,
                      lease_ms: int = 30000) -> tuple[list[tuple[Delivery, list[Any]]], set[str], starting.Cursors]:
        """Block until one of the ``watch`` tasks has an entry no worker read, then take, in one
        round trip (see starting.py). A single Redis only, and no task of a routing group (whose
        leases a take reserves first)."""
        return starting.wake_and_take(self, watch, counts, cursors, block_ms, consumer, worker_id, limits, lease_ms)

    def touch(self, consumer: str, deliveries: Sequence[Delivery], leased: Iterable[str] = (),
              lease_ms: int = 30000, limits: Mapping[str, Limits] | None = None) -> int:
        """Reset the idle time of entries we are running, so no live job is reclaimed, and extend
        the concurrency leases of those whose task is in ``leased`` (and their routing groups'
        leases, by ``limits``). Entries another worker has reclaimed meanwhile stay with it
        (touch.lua). Returns how many entries were still ours."""
        groups.refresh(self, deliveries, limits, lease_ms)
        leased = set(leased)
        pipe = self.pipeline()
        for function, group in by_function(deliveries).items():
            self.scripts.touch(
                keys=[keys.stream(self.prefix, function), keys.leases(self.prefix, function)],
                args=[consumer, lease_ms if function in leased else 0,
                      *(v for d in group for v in (d.entry_id, d.job_id))],
                client=pipe)
        return sum(pipe.execute())

    def lease_counts(self, functions: Sequence[str]) -> list[int]:
        """Leases held per task (expired ones included until the next start clears them)."""
        pipe = self.pipeline()
        for function in functions:
            pipe.zcard(keys.leases(self.prefix, function))
        return cast(list[int], pipe.execute())

    def release(self, consumer: str, deliveries: Sequence[Delivery], started: bool,
                limits: Mapping[str, Limits] | None = None) -> list[str]:
        """Hand deliveries back to their streams (release.lua); their routing-group leases too."""
        groups.give_back(self, deliveries, limits)
        pipe = self.pipeline()
        for d in deliveries:
            self.scripts.release(
                keys=[keys.stream(self.prefix, d.function), keys.job(self.prefix, d.job_id),
                      keys.leases(self.prefix, d.function), keys.attempts(self.prefix, d.job_id)],
                args=[consumer, d.entry_id, d.job_id, self.stream_maxlen, "1" if started else "0"],
                client=pipe)
        return cast(list[str], pipe.execute())  # release.lua's reply words

    # -- workers: settling ---------------------------------------------------------------
    def settle(self, consumer: str, completions: Sequence[Completion],
               limits: Mapping[str, Limits] | None = None) -> list[str]:
        """Write a batch of finishes and retries in one pipeline; one reply word per completion.
        Then give back their routing-group leases (``limits``), best effort: a retried settle
        must not find its batch written and call it stale."""
        replies = settling.write(self, consumer, completions)
        groups.give_back(self, [c.delivery for c in completions], limits)
        return replies

    def promote(self, function: str, limit: int = 500) -> tuple[int, float | None]:
        """Move due scheduled jobs into the stream; returns (moved, seconds until the next is due)."""
        moved, wait_s = self.scripts.promote(
            keys=[keys.scheduled(self.prefix, function), keys.stream(self.prefix, function)],
            args=[limit, self.stream_maxlen, keys.job_prefix(self.prefix, function)])
        return int(moved), (float(wait_s) if wait_s else None)

    def promote_now(self, function: str, statuses: Collection[str]) -> int:
        """Move scheduled jobs whose status is in ``statuses`` ("retrying", "queued" for a delayed
        submit) into the stream whatever their run-at time (``drain(retries=True)`` in tests: it
        reads the whole set)."""
        scheduled = keys.scheduled(self.prefix, function)
        job_ids = cast(list[str], self.client.zrange(scheduled, 0, -1))
        chosen = [j for j, status in zip(job_ids, self.statuses(job_ids)) if status in statuses]
        if not chosen:
            return 0
        moved, _ = self.scripts.promote(keys=[scheduled, keys.stream(self.prefix, function)],
                                        args=[len(chosen), self.stream_maxlen, keys.job_prefix(self.prefix, function),
                                              *chosen])
        return int(moved)

    def drop(self, delivery: Delivery) -> None:
        """Ack and delete an entry that names no job of its stream's task (garbage)."""
        level, entry_id = keys.split_token(delivery.entry_id)
        stream = keys.stream(self.prefix, delivery.function, level)
        self.pipeline().xack(stream, keys.GROUP, entry_id).xdel(stream, entry_id).execute()

    def statuses(self, job_ids: Sequence[str]) -> list[str | None]:
        pipe = self.pipeline()
        for job_id in job_ids:
            pipe.hget(keys.job(self.prefix, job_id), "status")
        return cast(list[str | None], pipe.execute())

    def backlog(self, functions: Sequence[str], scheduled_ids: Sequence[str] = ()) -> int:
        """Jobs still to run: stream entries (waiting or held) + due scheduled jobs + ``scheduled_ids``
        still scheduled. Acked entries are deleted, so XLEN counts only live ones."""
        now = self.redis_time()
        pipe = self.pipeline()
        for function in functions:
            for stream in keys.streams(self.prefix, function):
                pipe.xlen(stream)
            pipe.zcount(keys.scheduled(self.prefix, function), "-inf", now)
        for job_id in scheduled_ids:
            pipe.zscore(keys.scheduled(self.prefix, function_of(job_id)), job_id)
        replies = pipe.execute()
        counts: list[int] = replies[: (len(keys.LEVELS) + 1) * len(functions)]  # XLEN and ZCOUNT replies
        return sum(counts) + sum(1 for score in replies[len(counts):] if score is not None)

    def annotate(self, job_id: str, /, log_entry: str = "", lease: tuple[str, str] = ("", ""), **fields: Any) -> bool:
        """Write a running job's progress, checkpoint or log entry (the newest max_log_entries kept);
        only while ``lease`` (the run's stream entry id and consumer: its fencing token) still holds
        it. False once it does not."""
        flat = [v for pair in fields.items() for v in pair]
        return bool(self.scripts.annotate(
            keys=[keys.job(self.prefix, job_id), keys.logs(self.prefix, job_id),
                  keys.stream(self.prefix, function_of(job_id))],
            args=[*lease, self.max_log_entries, log_entry, *flat]))
