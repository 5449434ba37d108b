"""Keeps running jobs' stream entries and concurrency leases fresh from a native OS thread.

A greenlet that hogs the CPU blocks the hub, and with it every greenlet loop; if the refresh
ran there, the entries of a long CPU-bound job would go idle past ``claim_timeout_ms`` and be
reclaimed and run twice. A real thread (with its own hub and its own Redis connection) keeps
refreshing while the hub is blocked.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import redis
import structlog
from gevent import monkey

from upnext.store.connection import connect
from upnext.store.queue import Queue

if TYPE_CHECKING:
    from upnext.runtime.serving import Runtime

log = structlog.get_logger("upnext")


class LeaseKeeper:
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.stopped = False

    def start(self) -> None:
        start_new_thread = monkey.get_original("_thread", "start_new_thread")
        start_new_thread(self._run, ())

    def stop(self) -> None:
        self.stopped = True

    def _run(self) -> None:
        s = self.rt.settings
        queue = Queue(connect(s.redis_url), s.prefix)
        interval_s = self.rt.heartbeat_interval_s()
        while not self.stopped:
            running = [r.delivery for r in list(self.rt.inflight.values())]
            try:
                if running:
                    queue.touch(self.rt.worker_id, running, self.rt.capped, s.claim_timeout_ms, self.rt.limits)
            except redis.RedisError as exc:
                log.warning("lease_refresh_failed", worker=self.rt.worker_id, error=str(exc))
            time.sleep(interval_s)
