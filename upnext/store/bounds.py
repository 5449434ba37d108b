"""Back-pressure at submit (``max_queued`` / ``on_full``): which cap holds for each task of a
submit, and the wait of a producer whose queue is full with ``on_full="block"``. Counting the
queue and refusing a write are enqueue.lua's, atomic per task; nothing here writes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis

from upnext.errors import QueueFull
from upnext.store import keys
from upnext.store.records import NO_BOUND, ON_FULL, NewJob, QueueBound

FIRST_WAIT_S = 0.05
MAX_WAIT_S = 1.0


def bounds_of(client: redis.Redis, prefix: str, jobs: Sequence[NewJob]) -> dict[str, QueueBound]:
    """Each task's cap: the one its job carries (the producer holds the task), else the one its
    workers registered (an event handler or a ``call`` known only by name): one HMGET, only then."""
    bounds = {job.function: job.bound for job in jobs if job.bound is not None}
    unknown = sorted({job.function for job in jobs} - set(bounds))
    if unknown:
        registered = cast(list[str | None], client.hmget(keys.functions(prefix), unknown))
        bounds.update(zip(unknown, map(_registered, registered)))
    return bounds


def _registered(text: str | None) -> QueueBound:
    """The cap in a worker's registered options; none when absent or unreadable (an older release)."""
    try:
        options = json.loads(text or "{}")
        limit, on_full, timeout_s = options.get("max_queued"), options.get("on_full"), options.get("on_full_timeout")
    except (ValueError, AttributeError):
        return NO_BOUND
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return NO_BOUND
    timeout_s = timeout_s if isinstance(timeout_s, (int, float)) and timeout_s >= 0 else NO_BOUND.timeout_s
    return QueueBound(limit, on_full if on_full in ON_FULL else "reject", float(timeout_s))


def is_full(reply: Any) -> bool:
    """enqueue.lua's refusal: ['full', count] (a reply of job ids never holds 'full': ids have a ':')."""
    return bool(reply) and reply[0] == "full"


def wait_for_room(function: str, bound: QueueBound, adding: int, count: int, enqueue: Callable[[], Any]) -> Any:
    """After a refusal: raise QueueFull ("reject", or a batch larger than the cap), or call
    ``enqueue`` again with a growing pause (gevent-friendly under monkey-patching) until it is
    accepted or ``bound.timeout_s`` passes. Returns the accepted reply."""
    if bound.on_full != "block" or adding > bound.max_queued:
        raise QueueFull(function, bound.max_queued, count, adding)
    deadline = time.monotonic() + bound.timeout_s
    pause_s = FIRST_WAIT_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise QueueFull(function, bound.max_queued, count, adding, waited_s=bound.timeout_s)
        time.sleep(min(pause_s, left))
        pause_s = min(pause_s * 2, MAX_WAIT_S)
        reply = enqueue()
        if not is_full(reply):
            return reply
        count = int(reply[1])
