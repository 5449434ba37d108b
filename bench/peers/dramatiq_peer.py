"""Dramatiq in the benchmark: Redis broker, gevent workers (dramatiq-gevent, one process); the
Results middleware and ``store_results`` only for round trips (``_common.RESULTS``), the one
workload that reads results. See _common.py for the adapter shape."""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version

import _common
import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

NAME = f"Dramatiq {version('dramatiq')} (gevent)"
VENV = ".venv-peers"

broker = RedisBroker(url=_common.URL)
if _common.RESULTS:
    broker.add_middleware(Results(backend=RedisBackend(url=_common.URL)))
dramatiq.set_broker(broker)
_counter = redis.Redis.from_url(_common.URL, max_connections=1000)


# store_results is an option of the Results middleware: an actor may name it only when it is there
@dramatiq.actor(**({"store_results": True} if _common.RESULTS else {}))
def noop() -> None:
    _counter.incr(_common.COUNTER)


@dramatiq.actor
def io_sleep(ms: int) -> None:
    time.sleep(ms / 1000)  # cooperative under dramatiq-gevent
    _counter.incr(_common.COUNTER)


@dramatiq.actor
def cpu(n: int) -> None:
    _common.spin(n)
    _counter.incr(_common.COUNTER)


def run_worker(concurrency: int, extra: list[str]) -> None:
    command = os.path.join(os.path.dirname(sys.executable), "dramatiq-gevent")
    os.execv(command, [command, "dramatiq_peer", "-p", "1", "-t", str(concurrency), *extra])


def enqueue(job: str, n: int, arg: int | None) -> None:
    actor = {"noop": noop, "io_sleep": io_sleep, "cpu": cpu}[job]
    args = () if arg is None else (arg,)
    for _ in range(n):  # Dramatiq has no bulk send: group() sends one by one too
        actor.send(*args)


def round_trips(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        noop.send().get_result(block=True, timeout=30_000)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


if __name__ == "__main__":
    import dramatiq_peer  # by its module name, so the tasks it names are those the worker imports

    _common.main(dramatiq_peer)
