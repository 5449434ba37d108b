"""Tasks with cluster-wide limits; each records, in Redis, when it ran and how many ran at once."""

import os
import time

import upnext
from tests.apps import ledger

worker = upnext.Worker("limited")

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
