"""What the dashboard's functions page adds to ``status``: when each function last ended a job
(the newest entry of its ``ended`` stream, store/history.py) and each cron's schedule. One
pipelined round trip whatever the history holds: one XREVRANGE COUNT 1 and one HMGET per function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from upnext.store import keys
from upnext.store.queue import Queue


def last_ended(queue: Queue, functions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per function: ``last_ended_at`` (unix s, None when nothing ended within the TTL),
    ``last_status`` and, for a cron, its ``schedule``."""
    if not functions:
        return {}
    pipe = queue.pipeline()
    for name in functions:
        pipe.xrevrange(keys.ended(queue.prefix, name), count=1)
        pipe.hget(keys.cron(queue.prefix, name), "schedule")
    replies = pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(functions):
        newest, schedule = replies[2 * i], replies[2 * i + 1]
        at, status = None, None
        if newest:
            entry_id, fields = newest[0]
            at, status = int(entry_id.partition("-")[0]) / 1000, fields.get("s")
        out[name] = {"last_ended_at": at, "last_status": status, "schedule": schedule}
    return out
