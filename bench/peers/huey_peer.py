"""Huey in the benchmark: RedisHuey with greenlet workers (the consumer process is monkey-patched
first, as Huey's docs ask); for round trips only (``_common.RESULTS``) results stored (None too)
with BLPOP result notification. See _common.py for the adapter shape."""

from __future__ import annotations

import sys
import time
from importlib.metadata import version

if sys.argv[1:2] == ["worker"]:
    from gevent import monkey

    monkey.patch_all()

import _common  # noqa: E402
import redis  # noqa: E402
from huey import RedisHuey  # noqa: E402

NAME = f"Huey {version('huey')} (greenlet workers)"
VENV = ".venv-peers"

pool = redis.ConnectionPool.from_url(_common.URL, max_connections=1000)  # redis-py 8 pools stop at 100
huey = RedisHuey("bench", connection_pool=pool, store_none=_common.RESULTS,
                 notify_result=_common.RESULTS)
_counter = redis.Redis.from_url(_common.URL, max_connections=1000)


@huey.task()
def noop() -> None:
    _counter.incr(_common.COUNTER)


@huey.task()
def io_sleep(ms: int) -> None:
    time.sleep(ms / 1000)  # cooperative: this process is monkey-patched
    _counter.incr(_common.COUNTER)


@huey.task()
def cpu(n: int) -> None:
    _common.spin(n)
    _counter.incr(_common.COUNTER)


def run_worker(concurrency: int, extra: list[str]) -> None:
    from huey.bin.huey_consumer import consumer_main

    sys.argv = ["huey_consumer", "huey_peer.huey", "-k", "greenlet", "-w", str(concurrency), "-q", *extra]
    consumer_main()


def enqueue(job: str, n: int, arg: int | None) -> None:
    task = {"noop": noop, "io_sleep": io_sleep, "cpu": cpu}[job]
    args = () if arg is None else (arg,)
    for _ in range(n):  # Huey has no bulk enqueue
        task(*args)


def round_trips(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        noop().get(blocking=True, timeout=30)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


if __name__ == "__main__":
    import huey_peer  # by its module name, so the tasks it names are those the worker imports

    _common.main(huey_peer)
