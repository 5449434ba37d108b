"""Live updates shared by every open page: the pages poll (every 2 s, static/app.js) and each
answer comes from one shared snapshot per view and query, read from Redis at most once per
``max_age_s`` whatever the number of viewers. While one request reads, the others wait for its
answer instead of reading too (one lock per view), so ten open pages cost what one costs.

Polling rather than server-sent events: the same app then updates live when it is mounted in a
threaded Flask or Django server, which cannot hold a stream open per viewer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Hashable
from typing import Any

import structlog

log = structlog.get_logger("upnext.dashboard")

MAX_ENTRIES = 256  # distinct views kept (pages with their filters); the oldest go first


class Snapshots:
    def __init__(self, max_age_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.max_age_s = max_age_s
        self.clock = clock
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any], max_age_s: float | None = None) -> Any:
        """The value under ``key``, loaded again when older than ``max_age_s``."""
        age = self.max_age_s if max_age_s is None else max_age_s
        fresh = self._fresh(key, age)
        if fresh is not None:
            return fresh[1]
        with self._lock_of(key):
            fresh = self._fresh(key, age)  # another viewer may have read it while we waited
            if fresh is not None:
                return fresh[1]
            value = load()
            self._store(key, value)
            return value

    def get_or_refresh(self, key: Hashable, load: Callable[[], Any], max_age_s: float, wait: bool = True) -> Any:
        """The value under ``key`` at once, even when older than ``max_age_s``: a stale one is
        read again in the background (one reader at a time), so no viewer waits for a slow read.
        With none yet: read now, or with ``wait=False`` in the background too, answering None.
        For the charts, which change by the minute."""
        entry = self._values.get(key)
        if entry is None and wait:
            return self.get(key, load, max_age_s)
        if entry is None or self.clock() - entry[0] >= max_age_s:
            lock = self._lock_of(key)
            if lock.acquire(blocking=False):
                threading.Thread(target=self._refresh, args=(key, load, lock), daemon=True,
                                 name=f"dashboard-refresh-{key}").start()
        return None if entry is None else entry[1]

    def _refresh(self, key: Hashable, load: Callable[[], Any], lock: threading.Lock) -> None:
        try:
            self._store(key, load())
        except Exception as exc:  # Redis down: keep showing the last value; the next view tries again
            log.warning("dashboard_refresh_failed", key=str(key), error=repr(exc))
        finally:
            lock.release()

    def _fresh(self, key: Hashable, age: float) -> tuple[float, Any] | None:
        entry = self._values.get(key)
        return entry if entry is not None and self.clock() - entry[0] < age else None

    def _lock_of(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _store(self, key: Hashable, value: Any) -> None:
        with self._guard:
            self._values[key] = (self.clock(), value)
            while len(self._values) > MAX_ENTRIES:
                oldest = min(self._values, key=lambda k: self._values[k][0])
                self._values.pop(oldest)
                self._locks.pop(oldest, None)

    def clear(self, keep: Collection[Hashable] = ()) -> None:
        """Forget every snapshot (an action changed what they show), but those under ``keep``."""
        with self._guard:
            self._values = {key: value for key, value in self._values.items() if key in keep}
