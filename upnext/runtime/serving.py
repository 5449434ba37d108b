"""One serving worker process: the slots, the jobs in flight, the loops, and a graceful stop.

Loops (in loops.py) feed ``dispatch``; jobs run in greenlets holding a slot; completions go
to the outbox for the flusher. ``stop`` only records intent; ``serve`` does the draining.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import gevent.lock
import gevent.queue
import redis
import structlog
from gevent import get_hub
from greenlet import greenlet

from upnext.config import Settings
from upnext.context import JobContext
from upnext.errors import ConfigError
from upnext.job import dumps, function_of, is_job_id_of, params_of, printable
from upnext.runtime import loops
from upnext.runtime.executor import JobRunner, Started
from upnext.runtime.hubwatch import watch_hub
from upnext.runtime.keeper import LeaseKeeper
from upnext.runtime.procpool import ProcessPool
from upnext.store import dataformat, groups
from upnext.store.connection import connect
from upnext.store.queue import Queue
from upnext.store.records import Completion, Delivery

if TYPE_CHECKING:
    from upnext.worker import Worker

log = structlog.get_logger("upnext")

STOP_FETCH_TIMEOUT_S = 3.0
FLUSH_AT_STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 2.0  # how long a hard stop waits for the jobs it killed to unwind


class Running:
    """A job in flight: its delivery, its context, and the raw greenlet that runs it (named after
    the job); ``abandoned`` once a stop gave up waiting for it."""

    greenlet: Any = None
    abandoned = False

    def __init__(self, delivery: Delivery, ctx: JobContext):
        self.delivery, self.ctx = delivery, ctx


@dataclass
class Stats:
    started_at: float = field(default_factory=time.time)
    jobs_done: int = 0
    jobs_failed: int = 0
    last_fetch_at: float = 0.0


class Runtime:
    """Everything one worker process holds while it serves."""

    def __init__(self, worker: Worker, settings: Settings):
        worker = worker.subset(settings.only, settings.exclude)
        if not worker.tasks:
            raise ConfigError(f"{worker!r} has no tasks to run")
        worker.configure(dict(settings.values))
        self.worker = worker
        self.settings = settings
        self.queue = worker.queue
        # Each on its own connection once serving; the stream readers' decode leniently (loops.py).
        self.fetch_queue = self.flush_queue = self.reclaim_queue = self.queue
        self.tasks = dict(worker.tasks)
        self.functions = list(self.tasks)
        self.hot: set[str] = set()  # tasks whose streams had entries at the last fetch
        self.paused: set[str] = set()  # paused tasks (store/pause.py), read every heartbeat tick: not fetched
        self.drained = False  # the last fetch found fewer entries than it asked for
        self.empty_at: dict[str, float] = {}  # task -> when a read last found its streams empty (monotonic)
        self.cursors: dict[str, str] = {}  # stream -> the last entry id its group was given, as a take saw it
        self.woke: set[str] = set()  # tasks in which the last wait (wake_and_take) saw an unread entry
        self.seen_at: dict[str, float] = {}  # task -> when a fetch last found work in it (monotonic)
        self.probe_at = 0.0  # when the fetch loop next reads every task, not only the hot ones
        self.limits = {name: t.limits for name, t in self.tasks.items() if t.limits.any}
        self.capped = {name: lim.max_concurrency for name, lim in self.limits.items() if lim.max_concurrency}
        self.grouped = set(groups.grouped(self.limits))  # tasks in a routing group (store/groups.py)
        self.worker_id = f"{settings.name or socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.log = log.bind(worker=self.worker_id)
        self.slots = gevent.lock.Semaphore(settings.concurrency)
        self.wanted = 0  # jobs waiting to take back the slot they lent
        self.lent = 0  # jobs whose slot is lent out while they wait (lend_slot)
        self.inflight: dict[str, Running] = {}
        self.no_jobs = gevent.event.Event()  # set while nothing is in flight (see _run)
        self.no_jobs.set()
        self.outbox: gevent.queue.Queue[Completion] = gevent.queue.Queue(settings.outbox_size)
        self.stopping = gevent.event.Event()
        self.hard_stop = False
        self.failed_loop: str | None = None
        self.stats = Stats()
        self.heartbeat_due_at = 0.0  # monotonic; the heartbeat loop's first tick is a full heartbeat
        self.published_load: tuple[int, float] | None = None  # what the last record written said
        self.retried_ids: set[str] = set()
        self.flushing = False
        self.quiet = gevent.event.Event()  # set by the flusher once settled()
        self.pool = self._process_pool()
        self.keeper = LeaseKeeper(self)
        self.runner = JobRunner(self.queue, dict(settings.hooks), self.pool, settings.sync_executor, self.lend_slot,
                                self.worker_id)

    def _process_pool(self) -> ProcessPool | None:
        uses = any((t.executor or self.settings.sync_executor) == "process" for t in self.tasks.values())
        return ProcessPool(self.settings.process_pool_size, self.worker.child_spec()) if uses else None

    # -- slots ---------------------------------------------------------------------------
    def free_slots(self) -> int:
        return self.slots.counter - self.wanted

    def lend_slot(self) -> Any:
        """Give the current job's slot back while it waits; returns the call that takes it again."""
        self.slots.release()
        self.lent += 1

        def reacquire() -> None:
            self.wanted += 1
            try:
                self.slots.acquire()
            finally:
                self.wanted -= 1
                self.lent -= 1
        return reacquire

    # -- dispatch ------------------------------------------------------------------------
    def dispatch(self, deliveries: Sequence[Delivery], limit: int, queue: Queue | None = None) -> None:
        """Start what was fetched or reclaimed (through ``queue``: the loop's own, if it has
        one); anything beyond ``limit`` or fetched while stopping is handed straight back."""
        queue = queue or self.queue
        # Never a second run of a job this worker runs now (its own entry, were it ever handed back).
        valid = [d for d in deliveries if self._is_valid(d, queue) and d.job_id not in self.inflight]
        # Slots may have been taken by another loop while this one waited on Redis.
        keep = [] if self.stopping.is_set() else valid[:min(limit, max(self.free_slots(), 0))]
        if len(keep) < len(valid):
            queue.release(self.worker_id, valid[len(keep):], started=False)
        if not keep:
            return
        for _ in keep:
            self.slots.acquire()
        try:
            replies = queue.start(self.worker_id, self.worker_id, keep, self.limits,
                                       self.settings.claim_timeout_ms)
        except BaseException:
            for _ in keep:  # those entries stay pending with us and are reclaimed after claim_timeout_ms
                self.slots.release()
            raise
        for delivery, reply in zip(keep, replies):
            self._start_one(delivery, reply)

    def take(self, counts: dict[str, int]) -> list[Delivery]:
        """Fetch and start up to ``counts[task]`` new entries per task in one Redis call (the
        caller counted them within the free slots); returns the deliveries taken."""
        if sum(counts.values()) <= 0:
            return []
        return self._taking(counts, lambda: self.fetch_queue.take(
            self.worker_id, self.worker_id, counts, self.limits, self.settings.claim_timeout_ms))

    def wake_and_take(self, watch: list[str], counts: dict[str, int], block_ms: int) -> tuple[list[Delivery], set[str]]:
        """``take`` once one of the ``watch`` tasks has an entry no worker read (or ``block_ms``
        passed), in one round trip (Queue.wake_and_take); also returns the tasks that had one."""
        woke: set[str] = set()

        def call() -> list[tuple[Delivery, list[Any]]]:
            nonlocal woke
            taken, woke, moved = self.fetch_queue.wake_and_take(
                self.worker_id, self.worker_id, watch, counts, self.cursors, block_ms, self.limits,
                self.settings.claim_timeout_ms)
            self.cursors.update(moved)
            return taken
        return self._taking(counts, call), woke

    def _taking(self, counts: dict[str, int], call: Callable[[], list[tuple[Delivery, list[Any]]]]) -> list[Delivery]:
        """Hold a slot per entry asked for while ``call`` fetches and starts them; start the jobs."""
        want = sum(counts.values())
        for _ in range(want):
            self.slots.acquire()
        try:
            taken = call()
        except BaseException:
            for _ in range(want):
                self.slots.release()
            raise
        for _ in range(want - len(taken)):
            self.slots.release()
        if self.stopping.is_set():  # a stop came while Redis started these: hand them back unrun
            taken = self._hand_back_runs(taken)
        for delivery, reply in taken:
            self._start_one(delivery, reply)
        return [d for d, _ in taken]

    def _hand_back_runs(self, taken: list[tuple[Delivery, list[Any]]]) -> list[tuple[Delivery, list[Any]]]:
        """Release the runs among ``taken`` (their slots too); returns the other replies."""
        runs = [d for d, reply in taken if reply[0] == "run"]
        if runs:
            self.queue.release(self.worker_id, runs, started=True, limits=self.limits)
            for _ in runs:
                self.slots.release()
        return [(d, reply) for d, reply in taken if reply[0] != "run"]

    def _is_valid(self, delivery: Delivery, queue: Queue) -> bool:
        ok = is_job_id_of(delivery.job_id, delivery.function)
        if not ok:
            self.log.error("entry_dropped", entry_id=delivery.entry_id, function=delivery.function,
                           job_id=printable(delivery.job_id), reason="stream entry names no job of this task")
            queue.drop(delivery)
        return ok

    def _start_one(self, delivery: Delivery, reply: list[Any]) -> None:
        kind = reply[0]
        if kind == "run":
            try:
                started = Started.from_reply(delivery, reply)
            except ValueError as exc:
                self.slots.release()
                self.log.error("job_undecodable", job_id=delivery.job_id, error=str(exc))
                self.outbox.put(Completion(delivery, "failed", failure_reason="exception", idem_key=reply[6] or "",
                                           error=f"job {delivery.job_id}: its arguments are not valid JSON ({exc})"))
                return
            task = self.tasks[delivery.function]
            ctx = self.runner.context_for(task, started)
            running = self.inflight[delivery.job_id] = Running(delivery, ctx)
            self.no_jobs.clear()
            # A plain greenlet the hub switches into, as gevent.spawn_raw makes one without its
            # Python call and greenlet-tree bookkeeping; a gevent.Greenlet's links, tree tracking and
            # result slot cost ~10 µs a job, and nothing here uses any of them (the drain waits on
            # no_jobs, a hard stop kills with gevent.kill).
            hub = get_hub()
            glet: Any = greenlet(self._run, hub)
            running.greenlet = glet
            glet.name = f"job:{delivery.job_id}"  # what hubwatch names in a hub_blocked line
            hub.loop.run_callback(glet.switch, task, started, running)
            return
        self.slots.release()
        if kind == "garbage":
            self.log.error("entry_dropped", entry_id=delivery.entry_id, function=delivery.function,
                           job_id=printable(delivery.job_id), reason="stream entry names no job of this task")
        elif kind in ("busy", "deferred", "paused"):
            if kind == "paused" and delivery.function not in self.paused:
                self.log.info("function_paused", function=delivery.function)  # before the paused set said so
                self.paused.add(delivery.function)  # fetch no more of it until the next read of that set
            self.log.debug("job_held_back", job_id=delivery.job_id, reason=kind)
        elif kind == "expired":
            self.log.info("job_expired", job_id=delivery.job_id, function=delivery.function)
        elif kind == "poison":
            error = (f"job {delivery.job_id} was delivered {reply[1]} times and its worker died each time; "
                     f"failed after max_deliveries={self.settings.max_deliveries}")
            self.log.error("job_poisoned", job_id=delivery.job_id, deliveries=reply[1])
            self.outbox.put(Completion(delivery, "failed", error=error, failure_reason="lost", idem_key=reply[2]))
        else:
            self.log.info("job_skipped", job_id=delivery.job_id, reason=kind, status=(reply[1:] or [None])[0])

    def _run(self, task: Any, started: Started, running: Running) -> None:
        try:
            completion = self.runner.run(task, started, running.ctx)
            if not running.abandoned:
                self.outbox.put(completion)
        finally:
            self.inflight.pop(started.delivery.job_id, None)
            if not self.inflight:
                self.no_jobs.set()
            self.slots.release()

    def record(self, completions: Sequence[Completion], replies: Sequence[str]) -> None:
        """Called by the flusher once a batch is written."""
        self.stats.jobs_done += len(completions)
        if "stale" in replies or set(map(attrgetter("status"), completions)) != {"complete"}:  # else: nothing to note
            for completion, reply in zip(completions, replies):
                if reply == "stale":
                    self.log.warning("stale_completion", job_id=completion.delivery.job_id,
                                     reason="delivery was reclaimed by another worker; result discarded")
                elif completion.status == "retry":
                    self.retried_ids.add(completion.delivery.job_id)
                elif completion.status == "failed":
                    self.stats.jobs_failed += 1
        limit = self.settings.max_jobs_per_child
        if limit and self.stats.jobs_done >= limit and not self.stopping.is_set():
            self.log.info("worker_recycling", reason="max_jobs_per_child", jobs_done=self.stats.jobs_done)
            self.stop(graceful=True)

    # -- lifecycle -----------------------------------------------------------------------
    def stop(self, graceful: bool = True) -> None:
        """Record intent only (safe from a signal handler); ``serve`` does the work."""
        if self.stopping.is_set() or not graceful:
            self.hard_stop = True
        self.stopping.set()

    def loop_died(self, name: str) -> None:
        self.failed_loop = name
        self.stop(graceful=True)

    def load(self) -> tuple[int, float]:
        """What ``status`` wants fresh: the jobs in flight and when a fetch last took some."""
        return len(self.inflight), self.stats.last_fetch_at

    def info(self) -> str:
        """This worker's record (heartbeat). ``active`` is the jobs in flight; ``claim_timeout_ms``
        lets ``status`` say when a dead worker's entries will be reclaimed."""
        s = self.settings
        return json.dumps({
            "id": self.worker_id, "name": s.name, "host": socket.gethostname(), "pid": os.getpid(),
            "concurrency": s.concurrency, "functions": self.functions, "started_at": self.stats.started_at,
            "heartbeat_at": time.time(), "jobs_done": self.stats.jobs_done, "jobs_failed": self.stats.jobs_failed,
            "active": len(self.inflight), "last_fetch_at": self.stats.last_fetch_at,
            "claim_timeout_ms": s.claim_timeout_ms})

    def serve(self) -> int:
        if self.settings.hub_max_blocking_ms:
            watch_hub(self.settings.hub_max_blocking_ms / 1000)
        self._connect()
        self.log.info("worker_started", functions=self.functions, concurrency=self.settings.concurrency,
                      pid=os.getpid(), paused=sorted(self.paused & set(self.functions)))
        fetchers, others = loops.start(self)
        self.keeper.start()
        if self.settings.burst:
            while not self.stopping.wait(0.1):
                if self._idle():
                    self.log.info("burst_done", jobs_done=self.stats.jobs_done)
                    self.stop(graceful=True)
        else:
            self.stopping.wait()
        self.log.info("worker_draining", running=len(self.inflight), graceful_timeout_s=self.settings.graceful_timeout)
        self._drain(fetchers, others)
        self.log.info("worker_stopped", jobs_done=self.stats.jobs_done, failed_loop=self.failed_loop)
        return 1 if self.failed_loop else 0

    def settled(self) -> bool:
        """Nothing runs, and every outcome is written."""
        return not self.inflight and self.outbox.empty() and not self.flushing

    def _idle(self) -> bool:
        """Burst: nothing runs, nothing waits to be written, and nothing left that this worker may
        start (a paused function's jobs wait for its resume, not for this worker)."""
        if not self.settled():
            return False
        serving = [f for f in self.functions if f not in self.paused]
        retried = sorted(j for j in self.retried_ids if function_of(j) not in self.paused)
        return self.queue.backlog(serving, retried) == 0

    def _connect(self) -> None:
        """Wait for Redis (with backoff), refuse an evicting maxmemory-policy, register."""
        delay = 0.1
        while True:
            try:
                self.queue.client.ping()
                break
            except redis.ConnectionError as exc:
                self.log.warning("redis_unavailable", error=str(exc), retry_in_s=delay)
                if self.stopping.wait(delay):
                    raise SystemExit(1) from None
                delay = min(delay * 2, 5.0)
        self._check_eviction()
        dataformat.stamp(self.queue.client, self.queue.prefix)
        tolerant = self.queue.with_client(connect(self.settings.redis_url, tolerant=True))
        self.fetch_queue, self.reclaim_queue = tolerant.dedicated(), tolerant
        self.flush_queue = self.queue.dedicated()
        self.queue.ensure_groups(self.functions)
        handlers = {name: [h.name for h in event.handlers] for name, event in self.worker.events.items()}
        if any(handlers.values()):
            self.queue.registry.add_handlers({k: v for k, v in handlers.items() if v})
        # the parameters let `upnext-gevent call` refuse what submit() would refuse
        functions = {name: dumps({**t.options_dict(), "params": params_of(t.fn)}) for name, t in self.tasks.items()}
        self.paused = self.queue.registry.register(self.worker_id, self.info(), self.heartbeat_ttl_s(), functions)

    def _check_eviction(self) -> None:
        try:
            policy = self.queue.client.config_get("maxmemory-policy").get("maxmemory-policy", "noeviction")
        except redis.ResponseError:
            self.log.warning("maxmemory_policy_unknown", reason="CONFIG GET is not allowed on this Redis")
            return
        if policy != "noeviction" and not self.settings.allow_eviction:
            raise ConfigError(f"Redis maxmemory-policy is {policy!r}: Redis may evict queued jobs. Set it to "
                              "'noeviction', or start with --allow-eviction to accept the risk")

    def heartbeat_interval_s(self) -> float:
        claim_ms: int = self.settings.claim_timeout_ms  # Settings attributes are Any
        return min(max(claim_ms / 3000, 0.05), 10.0)

    def heartbeat_ttl_s(self) -> int:
        return max(int(self.heartbeat_interval_s() * 3) + 1, 10)

    def _drain(self, fetchers: list[gevent.Greenlet[[], None]], others: list[gevent.Greenlet[[], None]]) -> None:
        """Stop fetching (a read in progress is let finish, never cut), let running jobs finish up
        to graceful_timeout, hand the rest back, flush, unregister."""
        gevent.joinall(fetchers, timeout=STOP_FETCH_TIMEOUT_S)
        gevent.killall(fetchers)
        deadline = time.monotonic() + self.settings.graceful_timeout
        while self.inflight and not self.hard_stop and time.monotonic() < deadline:
            self.no_jobs.wait(0.1)
        self._release_running()
        self.keeper.stop()
        self._flush_outbox()
        gevent.killall(others)
        if self.pool is not None:
            self.pool.close()
        try:
            self.queue.registry.unregister(self.worker_id)
            self.queue.registry.forget_consumer(self.worker_id, self.functions)
        except redis.RedisError as exc:
            self.log.warning("unregister_failed", error=str(exc))

    def _release_running(self) -> None:
        left = list(self.inflight.values())
        if not left:
            return
        for running in left:
            running.abandoned = True
        try:
            self.queue.release(self.worker_id, [r.delivery for r in left], started=True, limits=self.limits)
            self.log.warning("jobs_handed_back", count=len(left), job_ids=[r.delivery.job_id for r in left])
        except redis.RedisError as exc:
            self.log.error("hand_back_failed", error=str(exc), reason="they will be reclaimed after claim_timeout_ms")
        for running in left:
            gevent.kill(running.greenlet)
        self.no_jobs.wait(KILL_TIMEOUT_S)

    def _flush_outbox(self) -> None:
        deadline = time.monotonic() + FLUSH_AT_STOP_TIMEOUT_S
        while (not self.outbox.empty() or self.flushing) and time.monotonic() < deadline and not self.hard_stop:
            gevent.sleep(0.01)
