"""upnext-gevent's side of the benchmark, in the adapter shape every peer file has (see
bench/README.md): ``worker <concurrency> [CLI args]``, ``enqueue <job> <n> [arg]``,
``roundtrip <n>``. Job bodies do one Redis INCR each, like every peer's."""

from __future__ import annotations

import json
import os
import sys
import time
from importlib.metadata import version

import redis

import upnext

NAME = f"upnext-gevent {version('upnext-gevent')}"
VENV = ""  # the interpreter running bench/run.py

os.environ.setdefault("UPNEXT_REDIS_URL", os.environ["BENCH_REDIS_URL"])
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


def main(command: str, *args: str) -> None:
    if command == "worker":
        os.environ["BENCH_CONCURRENCY"] = args[0]
        os.execv(sys.executable, [sys.executable, "-m", "upnext.cli", "upnext_gevent_peer:worker",
                                  "--concurrency", args[0], "--log-level", "error", *args[1:]])
    if command == "enqueue":
        job, n = {"noop": noop, "io_sleep": io_sleep, "cpu": cpu}[args[0]], int(args[1])
        kwargs = {} if job is noop else {"ms" if job is io_sleep else "n": int(args[2])}
        started_at, began = time.time(), time.perf_counter()
        for i in range(0, n, 1000):
            upnext.submit_many(job, [kwargs] * min(1000, n - i))
        print(json.dumps({"seconds": time.perf_counter() - began, "started_at": started_at}))
    elif command == "roundtrip":
        for _ in range(5):
            noop.wait(wait_timeout=30)
        samples = []
        for _ in range(int(args[0])):
            began = time.perf_counter()
            noop.wait(wait_timeout=30)
            samples.append((time.perf_counter() - began) * 1000)
        print(json.dumps({"ms": samples}))


if __name__ == "__main__":
    main(*sys.argv[1:])
