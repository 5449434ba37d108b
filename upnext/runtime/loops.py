"""The worker's greenlet loops: fetch (fetching.py), reclaim, flush, promote, sweep, heartbeat, watch, cron.

Each loop is "tick, log and continue on a Redis error, wait on the stop event". A loop that
dies of anything else stops the worker loudly instead of leaving a zombie process, so no data
may ever raise out of a tick; what each loop does with bad data:
- fetch, reclaim: read streams on tolerant connections (bytes that are not UTF-8 arrive as
  escaped text); an entry that names no job of its task is garbage: acked, deleted, logged.
- flush: a result or error text Redis cannot take was already turned into that job's failure by
  the executor; a batch that Redis (or its encoding) refuses anyway, for a reason other than an
  outage, is written one completion at a time, and one that is still refused is written as that
  job's failure instead. Outages are retried, never dropped.
- promote, sweep, heartbeat, watch, cron: read only what upnext wrote (ids, numbers, statuses).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import gevent
import gevent.queue
import redis
import structlog

from upnext.job import printable
from upnext.runtime import crons, fetching
from upnext.store.records import Completion

if TYPE_CHECKING:
    from upnext.runtime.serving import Runtime

log = structlog.get_logger("upnext")

FLUSH_MAX_BATCH = 256
WATCH_INTERVAL_S = 0.25
ERROR_BACKOFF_MAX_S = 5.0


def start(rt: Runtime) -> tuple[list[gevent.Greenlet[[], None]], list[gevent.Greenlet[[], None]]]:
    """Spawn the loops; returns (fetching loops, the others)."""
    fetchers = [_spawn(rt, "fetch", lambda: fetching.fetch_tick(rt), until_stop=True),
                _spawn(rt, "reclaim", lambda: reclaim_tick(rt), until_stop=True)]
    others = [_spawn(rt, "flush", lambda: flush_tick(rt), until_stop=False),
              _spawn(rt, "promote", lambda: promote_tick(rt), until_stop=False),
              _spawn(rt, "sweep", lambda: sweep_tick(rt), until_stop=False),
              _spawn(rt, "heartbeat", lambda: heartbeat_tick(rt), until_stop=False),
              _spawn(rt, "watch", lambda: watch_tick(rt), until_stop=False)]
    # always: a run-time cron (store/crons.py) may be added for any task while we serve
    others.append(_spawn(rt, "cron", lambda: crons.cron_tick(rt), until_stop=False))
    return fetchers, others


def _spawn(rt: Runtime, name: str, tick: Callable[[], float], until_stop: bool) -> gevent.Greenlet[[], None]:
    def loop() -> None:
        backoff = 0.1
        while not (until_stop and rt.stopping.is_set()):
            try:
                wait_s = tick()
                backoff = 0.1
            except redis.RedisError as exc:
                rt.log.warning("loop_error", loop=name, error=f"{type(exc).__name__}: {exc}", retry_in_s=backoff)
                wait_s, backoff = backoff, min(backoff * 2, ERROR_BACKOFF_MAX_S)
            if wait_s > 0 and until_stop:
                if rt.stopping.wait(wait_s):
                    break
            elif wait_s > 0:
                gevent.sleep(wait_s)  # loops not ended by stop: they are killed at the end of the drain

    def died(greenlet: gevent.Greenlet[[], None]) -> None:
        rt.log.critical("loop_died", loop=name, error=repr(greenlet.exception))
        rt.loop_died(name)

    greenlet = gevent.Greenlet(loop)
    greenlet.name = f"upnext:{name}"
    greenlet.link_exception(died)
    greenlet.start()
    return greenlet


def reclaim_tick(rt: Runtime) -> float:
    """Take over entries whose worker stopped touching them (it died) for claim_timeout_ms."""
    claim_ms: int = rt.settings.claim_timeout_ms  # Settings attributes are Any
    for function in [f for f in rt.functions if f not in rt.paused]:  # a paused task's entries wait
        free = rt.free_slots()
        if free <= 0 or rt.stopping.is_set():
            break
        suspects = 0 if any(r.delivery.suspect for r in rt.inflight.values()) else 1
        running = {r.delivery.entry_id for r in rt.inflight.values()}
        got = rt.reclaim_queue.reclaim(rt.worker_id, function, claim_ms, free, suspects, running)
        if got:
            rt.log.warning("jobs_reclaimed", function=function, job_ids=[printable(d.job_id) for d in got])
            rt.dispatch(got, limit=free, queue=rt.reclaim_queue)
    return min(max(claim_ms / 2000, 0.05), 10.0)


def flush_tick(rt: Runtime) -> float:
    """Write completions in batches: at most flush_interval_ms after the first one waited,
    sooner when no other job is running (nothing more is coming)."""
    first = rt.outbox.get()
    rt.flushing = True
    try:
        batch = [first]
        deadline = time.monotonic() + rt.settings.flush_interval_ms / 1000
        while len(batch) < FLUSH_MAX_BATCH:
            try:
                batch.append(rt.outbox.get_nowait())
                continue
            except gevent.queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or not rt.inflight:
                break
            try:
                rt.outbox.peek(timeout=left)
            except gevent.queue.Empty:
                break
        _write(rt, batch)
    finally:
        rt.flushing = False
    if rt.settled():
        rt.quiet.set()
    return 0


def _write(rt: Runtime, batch: list[Completion]) -> None:
    """Write one batch, retrying through Redis outages: completions are never dropped. A batch
    Redis refuses for another reason is written one by one, so one bad completion costs only its
    own job (which then fails, saying why)."""
    try:
        replies = _settle(rt, batch)
    except _Refused:
        replies = [_write_alone(rt, c) for c in batch]
    if replies is not None:
        rt.record(batch, replies)


class _Refused(Exception):
    """Redis refused a batch for a reason that retrying will not change."""


def _settle(rt: Runtime, batch: list[Completion]) -> list[str] | None:
    """settle() retried through outages; None if a hard stop came first (the entries stay
    pending and are reclaimed elsewhere); raises _Refused for a refusal that is not an outage."""
    backoff = 0.1
    while True:
        try:
            return rt.flush_queue.settle(rt.worker_id, batch, rt.limits)
        except (redis.RedisError, UnicodeError) as exc:  # what data can cause; anything else is a bug
            if not _outage(exc):
                raise _Refused(str(exc)) from exc
            error = f"{type(exc).__name__}: {exc}"
        if rt.hard_stop:
            rt.log.error("completions_dropped", count=len(batch), reason="hard stop during a Redis outage")
            return None
        rt.log.warning("flush_failed", error=error, count=len(batch), retry_in_s=backoff)
        gevent.sleep(backoff)
        backoff = min(backoff * 2, ERROR_BACKOFF_MAX_S)


OUTAGES = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.OutOfMemoryError,
           redis.exceptions.ReadOnlyError, redis.exceptions.ClusterError, redis.exceptions.TryAgainError,
           redis.exceptions.MasterDownError)
OUTAGE_REPLIES = ("BUSY", "LOADING", "OOM", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS")


def _outage(exc: BaseException) -> bool:
    """An error that says Redis is away, busy, loading, full or failing over: it passes by itself.
    (redis-py raises some of those replies as a plain ResponseError, hence the text check too.)"""
    return isinstance(exc, OUTAGES) or (isinstance(exc, redis.RedisError) and str(exc).startswith(OUTAGE_REPLIES))


def _write_alone(rt: Runtime, completion: Completion) -> str:
    try:
        return (_settle(rt, [completion]) or ["dropped"])[0]
    except _Refused as exc:
        rt.log.error("completion_refused", job_id=completion.delivery.job_id, error=printable(str(exc)))
        try:
            why = f"job {completion.delivery.job_id}: Redis refused its outcome ({exc})"
            return (_settle(rt, [completion.failed_instead(why)]) or ["dropped"])[0]
        except _Refused as again:
            rt.log.error("completion_dropped", job_id=completion.delivery.job_id, error=printable(str(again)),
                         reason="its entry stays pending and is reclaimed after claim_timeout_ms")
            return "dropped"


PROMOTE_MAX_SLEEP_S = 0.5


def promote_tick(rt: Runtime) -> float:
    """Move due delayed and retrying jobs into their streams; sleep until the next is due (as
    Redis's clock tells: a worker whose own clock is off neither spins nor runs jobs late)."""
    wait_s = PROMOTE_MAX_SLEEP_S
    for function in list(rt.functions):
        _, next_in_s = rt.queue.promote(function)
        if next_in_s is not None:
            wait_s = min(wait_s, next_in_s)
    return min(max(wait_s, 0.005), PROMOTE_MAX_SLEEP_S)


SWEEP_IDLE_CLAIM_TIMEOUTS = 10


def sweep_tick(rt: Runtime) -> float:
    """Remove what dead workers left: their consumers (no pending entry, idle for many claim
    timeouts) from this worker's groups, their ids from the worker set, and their last records
    (which ``status`` shows as dead) once silent for as long. Nothing in Redis may grow with the
    number of crashes."""
    claim_ms: int = rt.settings.claim_timeout_ms  # Settings attributes are Any
    removed = rt.queue.registry.sweep_consumers(rt.functions, SWEEP_IDLE_CLAIM_TIMEOUTS * claim_ms)
    gone = rt.queue.registry.prune_workers(keep_dead_s=SWEEP_IDLE_CLAIM_TIMEOUTS * claim_ms / 1000)
    if removed or gone:
        rt.log.info("dead_workers_swept", consumers=removed, worker_ids=gone)
    return min(max(claim_ms * 5 / 1000, 0.5), 60.0)


LOAD_INTERVAL_S = 1.0


def heartbeat_tick(rt: Runtime) -> float:
    """Say we are alive, and what we are doing (running entries are kept fresh by keeper.py):
    the full heartbeat every heartbeat interval, and in between, within LOAD_INTERVAL_S, the
    same record again whenever the jobs in flight or the last fetch changed, so ``status`` is
    never more than about a second behind. An idle worker writes only its heartbeats. Each tick
    also reads the paused tasks (in the same round trip when it writes), so a pause or a resume
    reaches the fetch loop within LOAD_INTERVAL_S."""
    now = time.monotonic()
    if now >= rt.heartbeat_due_at:
        _heartbeat(rt)
        rt.heartbeat_due_at = now + rt.heartbeat_interval_s()
    elif rt.load() != rt.published_load:
        try:
            _publish(rt)
        except redis.RedisError as exc:  # the next heartbeat reports it, in the log and the health file
            rt.log.debug("load_publish_failed", error=f"{type(exc).__name__}: {exc}")
    else:
        _set_paused(rt, rt.queue.pauses.paused())
    return max(min(LOAD_INTERVAL_S, rt.heartbeat_due_at - time.monotonic()), 0.005)


def _publish(rt: Runtime) -> None:
    load = rt.load()
    _set_paused(rt, rt.queue.registry.register(rt.worker_id, rt.info(), rt.heartbeat_ttl_s()))
    rt.published_load = load


def _set_paused(rt: Runtime, paused: set[str]) -> None:
    """Take the paused tasks just read, logging the pauses and resumes of this worker's tasks."""
    mine = set(rt.functions)
    for name in sorted((paused - rt.paused) & mine):
        rt.log.info("function_paused", function=name)
    for name in sorted((rt.paused - paused) & mine):
        rt.log.info("function_resumed", function=name)
    rt.paused = paused


def _heartbeat(rt: Runtime) -> None:
    """The health file is rewritten whatever Redis answers, with a one-line state: ``ok``, or
    ``redis_full: ...`` / ``redis_error: ...`` and the completions waiting in the outbox. This
    process is alive and keeps its work; a probe that restarted it would not free Redis."""
    try:
        _publish(rt)
        state = "ok"
    except redis.RedisError as exc:
        kind = "redis_full" if isinstance(exc, redis.exceptions.OutOfMemoryError) else "redis_error"
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        state = f"{kind}: {error}; {rt.outbox.qsize()} completions waiting in the outbox"
        rt.log.warning("heartbeat_failed", state=kind, error=error, outbox=rt.outbox.qsize())
    if rt.settings.health_file:
        _write_health(rt.settings.health_file, state)
    _check_memory(rt)


def _write_health(path: str, state: str) -> None:
    """Replace the file whole, so a probe never reads half a line; its mtime is the heartbeat."""
    partial = f"{path}.{os.getpid()}.tmp"
    with open(partial, "w") as health:
        health.write(state + "\n")
    os.replace(partial, path)


def _check_memory(rt: Runtime) -> None:
    limit_mb = rt.settings.max_memory_per_child
    if not limit_mb or rt.stopping.is_set():
        return
    with open("/proc/self/statm") as statm:
        rss_mb = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    if rss_mb > limit_mb:
        rt.log.info("worker_recycling", reason="max_memory_per_child", rss_mb=round(rss_mb, 1))
        rt.stop(graceful=True)


def watch_tick(rt: Runtime) -> float:
    """Notice running jobs that were cancelled: flag them, and kill their child process if any."""
    running = list(rt.inflight.values())
    if running:
        statuses = rt.queue.statuses([r.delivery.job_id for r in running])
        for r, status in zip(running, statuses):
            if status == "cancelled" and not r.ctx.is_cancelled:
                r.ctx.is_cancelled = True
                r.ctx.log.info("job_cancel_noticed")
                if rt.pool is not None:
                    rt.pool.terminate_job(r.delivery.job_id)
    return WATCH_INTERVAL_S
