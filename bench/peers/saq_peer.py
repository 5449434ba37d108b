"""SAQ in the benchmark: asyncio worker, one process, concurrency N; ``Job.refresh(until_complete)``
for round trips. Job bodies INCR through redis.asyncio, so they never block the loop. See _common.py for
the adapter shape."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from importlib.metadata import version

import _common
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

NAME = f"SAQ {version('saq')} (asyncio)"
VENV = ".venv-peers"

queue = RedisQueue(Redis.from_url(_common.URL, max_connections=1000))  # redis-py 8 pools stop at 100
_counter = Redis.from_url(_common.URL, max_connections=1000)


async def noop(ctx: dict) -> None:
    await _counter.incr(_common.COUNTER)


async def io_sleep(ctx: dict, *, ms: int) -> None:
    await asyncio.sleep(ms / 1000)
    await _counter.incr(_common.COUNTER)


async def cpu(ctx: dict, *, n: int) -> None:
    _common.spin(n)
    await _counter.incr(_common.COUNTER)


settings = {"queue": queue, "functions": [noop, io_sleep, cpu],
            "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "100"))}


def run_worker(concurrency: int, extra: list[str]) -> None:
    os.environ["BENCH_CONCURRENCY"] = str(concurrency)
    saq = os.path.join(os.path.dirname(sys.executable), "saq")
    os.execv(saq, [saq, "saq_peer.settings", "--workers", "1", "--quiet", *extra])


def enqueue(job: str, n: int, arg: int | None) -> None:
    kwargs = {} if arg is None else {"ms" if job == "io_sleep" else "n": arg}

    async def send() -> None:
        for i in range(0, n, 1000):  # SAQ has no bulk enqueue: 1,000 enqueues in flight at once
            await asyncio.gather(*(queue.enqueue(job, **kwargs) for _ in range(min(1000, n - i))))
    asyncio.run(send())


def round_trips(n: int) -> list[float]:
    async def measure() -> list[float]:
        samples = []
        for _ in range(n):
            began = time.perf_counter()
            job = await queue.enqueue("noop")
            # refresh() listens on pub/sub (apply() polls every 0.5 s); an end that lands between
            # its read and its subscription is missed and the listen waits out its timeout, so
            # it listens a second at a time and reads again (the sample keeps that second).
            deadline = time.monotonic() + 30
            while not job.completed:
                try:
                    await job.refresh(until_complete=1)
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise
            samples.append((time.perf_counter() - began) * 1000)
        return samples
    return asyncio.run(measure())


if __name__ == "__main__":
    import saq_peer  # by its module name, so the tasks it names are those the worker imports

    _common.main(saq_peer)
