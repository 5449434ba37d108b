"""Waiting for jobs to end: the notify list of ``task.wait()``, and the PubSub connections of
``Future.result`` and ``first_completed``.

A job submitted by ``task.wait()`` is written with its ``notify`` mark: its end is pushed onto its
notify list, which the wait pops with BLPOP (the submit and the pop are the wait's only two
commands). Any other wait subscribes to the job's done channel; the idle PubSubs are kept for
the next wait. A wait survives a Redis restart or failover: a broken connection is replaced and
the wait goes on until its deadline; it raises only if Redis stays unreachable past it. Records
and statuses are read through the Queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from typing import Protocol, cast

import redis
import structlog
from redis.client import PubSub

from upnext.job import TERMINAL_NAMES
from upnext.store import keys
from upnext.store.records import NewJob

log = structlog.get_logger("upnext")

# What a restart or failover raises (BusyLoadingError, Redis loading its data, is a ConnectionError).
RECONNECT_ERRORS = (redis.ConnectionError, redis.TimeoutError)
POLL_S = 5.0  # a bounded wait re-reads the record this often: a missed message never hangs a wait
RETRY_FIRST_S = 0.05  # after the immediate retry (a stale pooled connection is the usual cause)
RETRY_MAX_S = 1.0
# One BLPOP blocks at most this long: under redis-py's default socket timeout (5 s), which would
# otherwise cut it; then the record is read (as a PubSub wait does every POLL_S).
BLOCK_S = 2.0
MIN_BLOCK_S = 0.01  # a BLPOP timeout that Redis would round down to 0 ms blocks forever


def _published_record(data: str) -> dict[str, str] | None:
    """The job record a finish published (JSON [field, value, ...]); None for a bare status."""
    if not data.startswith("["):
        return None
    flat = json.loads(data)
    return dict(zip(flat[::2], flat[1::2]))


def _left_s(deadline: float | None) -> float:
    return POLL_S if deadline is None else deadline - time.monotonic()


class JobReader(Protocol):
    """What a Waiter needs of its Queue (a Protocol, so this module does not import it)."""

    client: redis.Redis
    prefix: str

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[str]: ...

    def get(self, job_id: str) -> dict[str, str] | None: ...

    def statuses(self, job_ids: Sequence[str]) -> list[str | None]: ...


class Waiter:
    """The waits of one Queue (one per Queue: a PubSub is not shared between loops)."""

    def __init__(self, queue: JobReader):
        self.queue = queue
        self._idle: list[PubSub] = []  # idle PubSub connections, kept for the next wait
        self._notified: set[str] = set()  # jobs written with their notify mark, not waited for yet

    def enqueue(self, new: NewJob) -> str:
        """Write one job whose submitter waits for it next: its end is pushed onto its notify
        list, so the ``wait`` needs no subscription (made before the write, undone after) and no
        read to close the race with a fast finish: the list keeps what was pushed."""
        job_id = self.queue.enqueue_many([dataclasses.replace(new, notify=True)])[0]
        if job_id == new.job_id:  # not a live duplicate's id (idempotency key): that one has no mark
            self._notified.add(job_id)
        return job_id

    def wait(self, job_id: str, timeout_s: float | None) -> dict[str, str] | None:
        """Block until the job is terminal (or ``timeout_s`` passes); return its record.

        A job this Waiter wrote with its notify mark (``enqueue``) is popped from its notify list;
        any other is waited for on its done channel, subscribed before the status is read
        (SUBSCRIBE is sent without waiting for its reply), so a finish between the two is not
        missed. Returns the last record seen (not terminal on timeout); None if there is none.
        """
        notified = job_id in self._notified
        self._notified.discard(job_id)
        if timeout_s == 0:
            return self.queue.get(job_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        retry_s = 0.0
        while True:
            try:
                if notified:
                    return self._pop_once(job_id, deadline)
                return self._wait_once(job_id, deadline)
            except RECONNECT_ERRORS as exc:
                # A message may have gone with the old connection: the next attempt reads first
                # (a pushed one is still in the list).
                retry_s = self._back_off(exc, deadline, retry_s, f"job {job_id}")

    def _pop_once(self, job_id: str, deadline: float | None) -> dict[str, str] | None:
        """Block on the job's notify list; re-read the record now and then (a push lost with a
        restart without persistence, or a worker of an earlier release, which pushes nothing)."""
        notify = keys.notify(self.queue.prefix, job_id)
        record: dict[str, str] | None = {"status": "queued"}
        while record is not None and record.get("status") not in TERMINAL_NAMES:
            left = _left_s(deadline)
            if left <= 0:
                break
            popped = self.queue.client.blpop([notify], timeout=max(min(left, self._block_s()), MIN_BLOCK_S))
            message = cast(tuple[str, str] | None, popped)
            record = (_published_record(message[1]) if message else None) or self.queue.get(job_id)
        return record

    def _block_s(self) -> float:
        """How long one BLPOP may block: BLOCK_S, or half a shorter socket timeout of the URL's."""
        pool = getattr(self.queue.client, "connection_pool", None)
        socket_timeout = pool.connection_kwargs.get("socket_timeout") if pool is not None else None
        return min(BLOCK_S, socket_timeout / 2) if socket_timeout else BLOCK_S

    def _wait_once(self, job_id: str, deadline: float | None) -> dict[str, str] | None:
        channel = keys.done_channel(self.queue.prefix, job_id)
        with self._subscribed([channel]) as pubsub:
            record = self.queue.get(job_id)
            while record is not None and record.get("status") not in TERMINAL_NAMES:
                left = _left_s(deadline)
                if left <= 0:
                    break
                # A bounded wait re-reads the record now and then: a missed message never hangs us,
                # and a message left over from an earlier subscription only costs one read.
                message = pubsub.get_message(timeout=min(left, POLL_S))
                if message is not None and message["channel"] == channel:
                    record = _published_record(message["data"]) or self.queue.get(job_id)
                elif message is not None or left <= POLL_S:
                    record = self.queue.get(job_id)
        return record

    def wait_any(self, job_ids: Sequence[str], timeout_s: float | None) -> str | None:
        """Block until one of the jobs is terminal; return its id (None if ``timeout_s`` passed)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        retry_s = 0.0
        while True:
            try:
                return self._wait_any_once(job_ids, deadline)
            except RECONNECT_ERRORS as exc:
                retry_s = self._back_off(exc, deadline, retry_s, f"jobs {', '.join(job_ids)}")

    def _wait_any_once(self, job_ids: Sequence[str], deadline: float | None) -> str | None:
        with self._subscribed([keys.done_channel(self.queue.prefix, j) for j in job_ids]) as pubsub:
            while True:
                for job_id, status in zip(job_ids, self.queue.statuses(job_ids)):
                    if status in TERMINAL_NAMES:
                        return job_id
                left = _left_s(deadline)
                if left <= 0:
                    return None
                pubsub.get_message(timeout=min(left, POLL_S))

    def _back_off(self, error: Exception, deadline: float | None, retry_s: float, waited: str) -> float:
        """Sleep before the next attempt (never past the deadline) and return the next delay; raise
        if the deadline has passed. Every idle PubSub is dropped: a restart broke them all."""
        for pubsub in self._idle:
            pubsub.close()
        self._idle.clear()
        left = _left_s(deadline)
        if left <= 0:
            raise redis.ConnectionError(f"waiting for {waited}: Redis unreachable until the wait's deadline: "
                                        f"{error}") from error
        log.warning("wait_reconnecting", waiting_for=waited, error=str(error), retry_in_s=retry_s)
        time.sleep(min(retry_s, left))
        return min(max(retry_s * 2, RETRY_FIRST_S), RETRY_MAX_S)

    @contextlib.contextmanager
    def _subscribed(self, channels: Sequence[str]) -> Iterator[PubSub]:
        """A PubSub subscribed to ``channels``."""
        pubsub = self._subscribe(channels)
        try:
            yield pubsub
        except BaseException:
            pubsub.close()
            raise
        self._release(pubsub, channels)

    def _subscribe(self, channels: Sequence[str]) -> PubSub:
        """Idle PubSubs are kept for the next wait: closing one drops its connection, and a new
        connection costs several round trips. SUBSCRIBE does not wait for its reply."""
        try:
            pubsub = self._idle.pop()
        except IndexError:
            pubsub = self.queue.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(*channels)
        except BaseException:
            pubsub.close()
            raise
        return pubsub

    def _release(self, pubsub: PubSub, channels: Sequence[str]) -> None:
        """Back to the idle list; one whose connection broke is dropped (the wait has its answer)."""
        try:
            pubsub.unsubscribe(*channels)  # type: ignore[no-untyped-call]
        except RECONNECT_ERRORS:
            pubsub.close()
            return
        except BaseException:
            pubsub.close()
            raise
        self._idle.append(pubsub)
