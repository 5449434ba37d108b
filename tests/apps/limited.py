"""Tasks with cluster-wide limits; each records, in Redis, when it ran and how many ran at once."""

import os
import time

import upnext
from tests.apps import ledger

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("limited", concurrency=10)

TRACK = """
local running = redis.call('INCR', KEYS[1])
if running > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], running) end
return running
"""


@worker.task(max_concurrency=2)
def capped(i: int) -> int:
    ledger().eval(TRACK, 2, "running:capped", "max:capped")
    time.sleep(0.05)
    ledger().decr("running:capped")
    return i


@worker.task(rate_limit="5/s")
def limited(i: int) -> float:
    started = time.time()
    ledger().rpush("starts:limited", started)
    return started


@worker.task(max_concurrency=1)
def hog(seconds: float) -> int:
    ledger().rpush("starts:hog", os.getpid())
    ctx = upnext.get_current_context()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not ctx.is_cancelled:
        time.sleep(0.02)
    return os.getpid()


def _tracked(names: tuple[str, ...], seconds: float) -> None:
    """Count this job as running under each name (``max:`` keeps the peak) while it sleeps. Keys
    are hash-tagged per name so the script keeps to one slot on Redis Cluster."""
    for name in names:
        ledger().eval(TRACK, 2, f"{{track:{name}}}:running", f"{{track:{name}}}:max")
    time.sleep(seconds)
    for name in names:
        ledger().decr(f"{{track:{name}}}:running")


@worker.task(routing_group="llm", group_max_concurrency=2)
def summarize(i: int) -> int:
    _tracked(("llm",), 0.05)
    return i


@worker.task(routing_group="llm", group_max_concurrency=2, max_concurrency=1)
def translate(i: int) -> int:
    _tracked(("llm", "translate"), 0.05)
    return i


prompted = worker.event("prompted")


@prompted.on(routing_group="llm", group_max_concurrency=2)
def on_prompted(i: int) -> int:
    _tracked(("llm",), 0.05)
    return i


@worker.task(routing_group="slow", group_max_concurrency=1)
def slow_hog(seconds: float) -> int:
    ledger().rpush("starts:slow_hog", os.getpid())
    ctx = upnext.get_current_context()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not ctx.is_cancelled:
        time.sleep(0.02)
    return os.getpid()


# Another app with another task of group "slow" (and not slow_hog): a worker of it can start
# slow_other only once the group's one lease is free, and never runs slow_hog itself.
other_worker = upnext.Worker("limited-other", concurrency=10)


@other_worker.task(routing_group="slow", group_max_concurrency=1)
def slow_other() -> int:
    return os.getpid()
