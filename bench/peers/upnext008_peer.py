"""The asyncio upnext 0.0.8 (the project upnext-gevent reimagines) in the benchmark: its own
``upnext run`` CLI, async job bodies that INCR through redis.asyncio, ``submit_many`` for bulk
enqueue and ``task.wait`` for round trips. See _common.py for the adapter shape."""

# ruff: noqa: I001  (``upnext`` here is PyPI's 0.0.8, a third-party package, not this project)
from __future__ import annotations

import asyncio
import os
import sys
import time
from importlib.metadata import version

import _common
import upnext
from redis.asyncio import Redis
from upnext.sdk import submit_many

NAME = f"upnext {version('upnext')} (asyncio)"
VENV = ".venv-peers"

worker = upnext.Worker("bench", concurrency=int(os.environ.get("BENCH_CONCURRENCY", "100")),
                       redis_url=_common.URL)
_counter = Redis.from_url(_common.URL, max_connections=1000)


@worker.task
async def noop() -> None:
    await _counter.incr(_common.COUNTER)


@worker.task
async def io_sleep(ms: int) -> None:
    await asyncio.sleep(ms / 1000)
    await _counter.incr(_common.COUNTER)


@worker.task
async def cpu(n: int) -> None:
    _common.spin(n)
    await _counter.incr(_common.COUNTER)


def run_worker(concurrency: int, extra: list[str]) -> None:
    os.environ["BENCH_CONCURRENCY"] = str(concurrency)
    command = os.path.join(os.path.dirname(sys.executable), "upnext")
    os.execv(command, [command, "run", "upnext008_peer.py", "--redis-url", _common.URL, *extra])


def enqueue(job: str, n: int, arg: int | None) -> None:
    task = {"noop": noop, "io_sleep": io_sleep, "cpu": cpu}[job]
    kwargs = {} if arg is None else {"ms" if job == "io_sleep" else "n": arg}

    async def send() -> None:
        for i in range(0, n, 1000):
            await submit_many(task, [kwargs] * min(1000, n - i))
    worker.initialize(_common.URL)
    asyncio.run(send())


def round_trips(n: int) -> list[float]:
    async def measure() -> list[float]:
        samples = []
        for _ in range(n):
            began = time.perf_counter()
            await noop.wait(wait_timeout=30)
            samples.append((time.perf_counter() - began) * 1000)
        return samples
    worker.initialize(_common.URL)
    return asyncio.run(measure())


if __name__ == "__main__":
    import upnext008_peer  # by its module name, so the tasks it names are those the worker imports

    _common.main(upnext008_peer)
