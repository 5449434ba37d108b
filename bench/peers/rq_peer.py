"""RQ in the benchmark: SimpleWorker (one job at a time, no fork per job), Queue.enqueue_many in
a pipeline, Job.latest_result(timeout) for round trips. See _common.py for the adapter shape."""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version

import _common
import redis
from rq import Queue

NAME = f"RQ {version('rq')} (SimpleWorker)"
VENV = ".venv-peers"

_counter = redis.Redis.from_url(_common.URL, max_connections=1000)
queue = Queue("bench", connection=redis.Redis.from_url(_common.URL))


def noop() -> None:
    _counter.incr(_common.COUNTER)


def io_sleep(ms: int) -> None:
    time.sleep(ms / 1000)
    _counter.incr(_common.COUNTER)


def cpu(n: int) -> None:
    _common.spin(n)
    _counter.incr(_common.COUNTER)


def run_worker(concurrency: int, extra: list[str]) -> None:
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    os.execv(rq, [rq, "worker", "bench", "--url", _common.URL, "--worker-class", "rq.worker.SimpleWorker",
                  "--quiet", "--path", ".", *extra])


def enqueue(job: str, n: int, arg: int | None) -> None:
    fn = f"rq_peer.{job}"
    args = () if arg is None else (arg,)
    for i in range(0, n, 1000):
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many([Queue.prepare_data(fn, args) for _ in range(min(1000, n - i))], pipeline=pipe)
            pipe.execute()


def round_trips(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        queue.enqueue(noop).latest_result(timeout=30)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


if __name__ == "__main__":
    import rq_peer  # by its module name, so the tasks it names are those the worker imports

    _common.main(rq_peer)
