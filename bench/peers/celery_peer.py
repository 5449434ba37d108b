"""Celery in the benchmark: gevent pool, Redis broker and result backend, its defaults otherwise
(early acks, prefetch multiplier 4). See _common.py for the adapter shape."""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version

import _common
import redis
from celery import Celery

NAME = f"Celery {version('celery')} (gevent pool)"
VENV = ".venv-peers"

app = Celery("celery_peer", broker=_common.URL, backend=_common.URL)
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
_counter = redis.Redis.from_url(_common.URL, max_connections=1000)


@app.task
def noop() -> None:
    _counter.incr(_common.COUNTER)


@app.task
def io_sleep(ms: int) -> None:
    time.sleep(ms / 1000)  # cooperative: the gevent pool patches the worker process
    _counter.incr(_common.COUNTER)


@app.task
def cpu(n: int) -> None:
    _common.spin(n)
    _counter.incr(_common.COUNTER)


def run_worker(concurrency: int, extra: list[str]) -> None:
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    os.execv(celery, [celery, "-A", "celery_peer", "worker", "-P", "gevent", "-c", str(concurrency),
                      "--loglevel", "WARNING", "--without-gossip", "--without-mingle", *extra])


def enqueue(job: str, n: int, arg: int | None) -> None:
    task = {"noop": noop, "io_sleep": io_sleep, "cpu": cpu}[job]
    args = () if arg is None else (arg,)
    with app.producer_or_acquire() as producer:  # one connection for the whole batch
        for _ in range(n):
            task.apply_async(args, producer=producer, ignore_result=True)


def round_trips(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        noop.delay().get(timeout=30)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


if __name__ == "__main__":
    import celery_peer  # by its module name, so the tasks it names are those the worker imports

    _common.main(celery_peer)
