"""upnext-gevent side of the benchmark: the same job bodies as every peer (one INCR each)."""

import os
import time

import redis

import upnext

worker = upnext.Worker("bench", concurrency=int(os.environ.get("BENCH_CONCURRENCY", "100")))
_counter = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@worker.task
def noop() -> None:
    _counter.incr("bench:done")


@worker.task
def io_sleep(ms: int) -> None:
    time.sleep(ms / 1000)
    _counter.incr("bench:done")


@worker.task
def cpu(n: int) -> None:
    """Runs in the greenlet pool on purpose: one worker process is then one core, so the
    --processes comparison measures the pre-fork supervisor, not the process pool."""
    total = 0
    for i in range(n):
        total += i * i
    _counter.incr("bench:done")
