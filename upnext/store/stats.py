"""What ``stats`` shows: per function, the counters and histogram buckets the finishing Lua calls
write (keys.stats_minute / stats_hour / stats_total), read for a window ending now. Read-only.

Bounded: two round trips. A window of up to MINUTE_ROWS_MAX_S is read minute by minute (at most
180 HGETALLs per function); a longer one (up to MAX_WINDOW_S, 24 h) hour by hour (at most 24 per
function), so 100 functions over 24 h cost 2,500 commands, not 144,000.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, cast

from upnext.store import keys
from upnext.store.queue import Queue

COUNTERS = ("completed", "failed", "retried", "cancelled")
HISTOGRAMS = ("run", "wait")  # run time of an attempt that ended; queue wait from enqueued (or due) to started
MAX_WINDOW_S = 86400
MINUTE_ROWS_MAX_S = 3 * 3600  # beyond this the rows are hours: 180 minute keys per function at most


@dataclass
class Histogram:
    """Per-bucket counts (not cumulative) over keys.STAT_BUCKETS_S, their number and sum."""

    counts: list[int] = field(default_factory=lambda: [0] * len(keys.STAT_BUCKETS_S))
    n: int = 0
    sum_s: float = 0.0

    def add(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.n += other.n
        self.sum_s += other.sum_s

    def quantile(self, q: float) -> float | None:
        """The q-quantile estimated as Prometheus's histogram_quantile does: linear within the
        bucket that holds it; the last finite bound when it falls in +Inf. None when empty."""
        if self.n <= 0:
            return None
        rank, seen, lower = q * self.n, 0, 0.0
        for bound, count in zip(keys.STAT_BUCKETS_S, self.counts):
            if count and seen + count >= rank:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - seen) / count
            seen += count
            lower = bound if not math.isinf(bound) else lower
        return lower


@dataclass
class Counts:
    """One hash of stats (a minute, an hour or the totals), missing fields read as 0."""

    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    run: Histogram = field(default_factory=Histogram)
    wait: Histogram = field(default_factory=Histogram)

    @classmethod
    def parse(cls, raw: dict[str, str]) -> Counts:
        counts = cls({name: int(raw.get(name, 0)) for name in COUNTERS})
        for name in HISTOGRAMS:
            histogram = getattr(counts, name)
            histogram.counts = [int(raw.get(f"{name}_{i}", 0)) for i in range(len(keys.STAT_BUCKETS_S))]
            histogram.n = int(raw.get(f"{name}_n", 0))
            histogram.sum_s = float(raw.get(f"{name}_sum", 0))
        return counts

    def add(self, other: Counts) -> None:
        for name in COUNTERS:
            self.counters[name] += other.counters[name]
        self.run.add(other.run)
        self.wait.add(other.wait)

    @property
    def counters_seen(self) -> bool:
        """Anything counted at all (a function that never ran anything has no stats)."""
        return any(self.counters.values()) or self.run.n > 0

    @property
    def ended(self) -> int:
        """Runs that ended for good (a retried attempt is not one: the job runs again)."""
        return self.counters["completed"] + self.counters["failed"] + self.counters["cancelled"]

    def to_dict(self) -> dict[str, Any]:
        return {**self.counters, **{f"{name}_{p}_s": getattr(self, name).quantile(q)
                                    for name in HISTOGRAMS for p, q in (("p50", 0.5), ("p95", 0.95))},
                "run_n": self.run.n, "wait_n": self.wait.n}


@dataclass
class FunctionStats:
    function: str
    rows: list[tuple[int, Counts]]  # (start of the minute or hour, unix s), oldest first
    window: Counts
    total: Counts

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "window": self.window.to_dict(), "total": self.total.to_dict(),
                "rows": [{"at": at, **counts.to_dict()} for at, counts in self.rows]}


def step_for(since_s: int) -> int:
    """Seconds per row: a minute up to MINUTE_ROWS_MAX_S, an hour beyond."""
    return 60 if since_s <= MINUTE_ROWS_MAX_S else 3600


def read_stats(queue: Queue, since_s: int, function: str | None = None) -> tuple[int, list[FunctionStats]]:
    """(the step in seconds, per function its rows for the last ``since_s`` seconds by Redis's
    clock, the current minute or hour included, its sum and its totals). Every registered
    function, or only ``function``."""
    if not 0 < since_s <= MAX_WINDOW_S:
        raise ValueError(f"since must be within 1 s and {MAX_WINDOW_S} s (24 h), got {since_s} s")
    pipe = queue.pipeline()
    pipe.time()
    pipe.hkeys(keys.functions(queue.prefix))
    (now_s, _), registered = pipe.execute()
    names = [function] if function is not None else sorted(cast(list[str], registered))
    step = step_for(since_s)
    last = now_s // step
    slots = list(range(last - math.ceil(since_s / step) + 1, last + 1))
    pipe = queue.pipeline()
    for name in names:
        for slot in slots:
            pipe.hgetall(keys.stats_minute(queue.prefix, name, slot) if step == 60
                         else keys.stats_hour(queue.prefix, name, slot))
        pipe.hgetall(keys.stats_total(queue.prefix, name))
    replies = iter(pipe.execute())
    return step, [_function_stats(name, [(slot * step, Counts.parse(next(replies))) for slot in slots],
                                  Counts.parse(next(replies))) for name in names]


def _function_stats(name: str, rows: list[tuple[int, Counts]], total: Counts) -> FunctionStats:
    window = Counts()
    for _, counts in rows:
        window.add(counts)
    return FunctionStats(name, rows, window, total)


def as_json(step: int, stats: list[FunctionStats]) -> str:
    return json.dumps({"step_s": step, "functions": [s.to_dict() for s in stats]}, indent=2)
