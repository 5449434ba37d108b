"""Tasks with cluster-wide limits; each records, in Redis, when it ran and how many ran at once."""

import os
import time

import redis

import upnext
from upnext.store.connection import connect

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("limited", concurrency=10)
_client = None

TRACK = """
local running = redis.call('INCR', KEYS[1])
if running > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], running) end
return running
"""


def client() -> redis.Redis:
    global _client
    if _client is None:
        fresh = connect(os.environ["UPNEXT_REDIS_URL"])  # yields; a client dropped here would close its
        # pool under a greenlet still using it, so the first one made is kept
        _client = _client or fresh
    return _client


@worker.task(max_concurrency=2)
def capped(i: int) -> int:
    client().eval(TRACK, 2, "running:capped", "max:capped")
    time.sleep(0.05)
    client().decr("running:capped")
    return i


@worker.task(rate_limit="5/s")
def limited(i: int) -> float:
    started = time.time()
    client().rpush("starts:limited", started)
    return started


@worker.task(max_concurrency=1)
def hog(seconds: float) -> int:
    client().rpush("starts:hog", os.getpid())
    ctx = upnext.get_current_context()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not ctx.is_cancelled:
        time.sleep(0.02)
    return os.getpid()
