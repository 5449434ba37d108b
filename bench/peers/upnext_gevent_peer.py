"""upnext-gevent in the benchmark (see _common.py for the adapter shape)."""

from __future__ import annotations

import os
import sys
import time
from importlib.metadata import version

import _common
import redis

import upnext

NAME = f"upnext-gevent {version('upnext-gevent')}"
VENV = ""

os.environ.setdefault("UPNEXT_REDIS_URL", _common.URL)
_concurrency = os.environ.get("BENCH_CONCURRENCY")  # unset in the defaults row: Worker's own default
worker = upnext.Worker("bench", concurrency=int(_concurrency) if _concurrency else None)
_counter = redis.Redis.from_url(_common.URL, max_connections=1000)


@worker.task
def noop() -> None:
    _counter.incr(_common.COUNTER)


@worker.task
def io_sleep(ms: int) -> None:
    time.sleep(ms / 1000)
    _counter.incr(_common.COUNTER)


@worker.task
def quiet() -> None:
    """A second no-op function: bench/fleet.py's fairness run times it beside a backlog of noop."""
    _counter.incr(_common.COUNTER)


def _idle(_: int = 0) -> None:
    """Never submitted: the functions bench/fleet.py's idle-cost run makes workers poll."""


for _i in range(int(os.environ.get("BENCH_EXTRA_FUNCTIONS", "0"))):
    worker.task(name=f"idle{_i}")(_idle)


@worker.task
def cpu(n: int) -> None:
    """Runs in the greenlet pool on purpose: one worker process is then one core, so the
    --processes comparison measures the pre-fork supervisor, not the process pool."""
    _common.spin(n)
    _counter.incr(_common.COUNTER)


# The benchmark's tuning, stated rather than inherited: the defaults are the seed's (concurrency
# 2, batch 4, inbox 4), meant for safety, not throughput. setdefault: an env value still wins.
TUNING = {"UPNEXT_QUEUE_BATCH_SIZE": "32", "UPNEXT_QUEUE_INBOX_SIZE": "32"}
DEFAULTS_FLAG = "--seed-defaults"  # run.py's defaults row: no tuning at all, not even --concurrency


def run_worker(concurrency: int, extra: list[str]) -> None:
    flags = ["--concurrency", str(concurrency)]
    if DEFAULTS_FLAG in extra:
        extra, flags = [e for e in extra if e != DEFAULTS_FLAG], []
        for name in (*TUNING, "UPNEXT_CONCURRENCY", "BENCH_CONCURRENCY"):
            os.environ.pop(name, None)
    else:
        for name, value in TUNING.items():
            os.environ.setdefault(name, value)
        os.environ["BENCH_CONCURRENCY"] = str(concurrency)
    os.execv(sys.executable, [sys.executable, "-m", "upnext.cli", "upnext_gevent_peer:worker",
                              *flags, "--log-level", "error", *extra])


def enqueue(job: str, n: int, arg: int | None) -> None:
    task = {"noop": noop, "io_sleep": io_sleep, "cpu": cpu}[job]
    kwargs = {} if arg is None else {"ms" if job == "io_sleep" else "n": arg}
    for i in range(0, n, 1000):
        upnext.submit_many(task, [kwargs] * min(1000, n - i))


def round_trips(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        noop.wait(wait_timeout=30)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


if __name__ == "__main__":
    import upnext_gevent_peer  # by its module name, so the tasks it names are those the worker imports

    _common.main(upnext_gevent_peer)
