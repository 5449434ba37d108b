"""What the dashboard's charts read: per minute (or hour) the runs completed and failed, summed
over functions, and run-time / queue-wait histograms of the current and previous hour. A cheaper
read than store/stats.py's full rows: only two fields of each minute, read by one Lua call per
function (ended_counts.lua), so 100 functions cost 100 replies for the last hour, in one
pipelined round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

from upnext.store import keys
from upnext.store.queue import Queue
from upnext.store.stats import Counts

Row = tuple[int, int, int]  # (start of the minute or hour, unix s; completed; failed)


def ended_per_step(queue: Queue, functions: Sequence[str], step_s: int, rows: int) -> list[Row]:
    """The last ``rows`` minutes (``step_s`` 60) or hours (3600), the current one included, oldest
    first, by Redis's clock."""
    if step_s not in (60, 3600):
        raise ValueError(f"step_s must be 60 or 3600, got {step_s}")
    now_s = int(queue.client.time()[0])
    slots = list(range(now_s // step_s - rows + 1, now_s // step_s + 1))
    key = keys.stats_minute if step_s == 60 else keys.stats_hour
    pipe = queue.pipeline()
    for name in functions:
        queue.scripts.ended_counts(keys=[key(queue.prefix, name, slot) for slot in slots], args=[], client=pipe)
    completed, failed = [0] * len(slots), [0] * len(slots)
    for counts in pipe.execute():
        for i in range(len(slots)):
            completed[i] += int(counts[2 * i])
            failed[i] += int(counts[2 * i + 1])
    return [(slot * step_s, completed[i], failed[i]) for i, slot in enumerate(slots)]


def recent_histograms(queue: Queue, functions: Sequence[str]) -> Counts:
    """The current and the previous hour's counters and histograms, summed over functions (the
    quantiles of roughly the last one to two hours)."""
    now_s = int(queue.client.time()[0])
    pipe = queue.pipeline()
    for name in functions:
        for hour in (now_s // 3600 - 1, now_s // 3600):
            pipe.hgetall(keys.stats_hour(queue.prefix, name, hour))
    total = Counts()
    for raw in pipe.execute():
        total.add(Counts.parse(raw))
    return total
