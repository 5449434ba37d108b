"""What every adapter shares: its command line and the job bodies' arithmetic.

    python <system>_peer.py worker <concurrency> [extra worker CLI args]
    python <system>_peer.py enqueue <noop|io_sleep|cpu> <n> [ms | loop count]
    python <system>_peer.py roundtrip <n>

``enqueue`` and ``roundtrip`` print one JSON line (the first WARM_UP round trips are not
counted). An adapter module defines NAME, VENV (the folder under bench/ whose bin/python runs
it; "" for bench/run.py's own interpreter) and ``run_worker(concurrency, extra)``,
``enqueue(job, n, arg)``, ``round_trips(n) -> [ms]``. ``RESULTS`` says whether the workload reads
results (the round trips): an adapter stores them only then, if its system lets it.
Every job body ends with one INCR of ``COUNTER``, which the runner polls.
"""

from __future__ import annotations

import json
import os
import sys
import time
from types import ModuleType

URL = os.environ["BENCH_REDIS_URL"]
# Set (to "1") only for the round-trip workload, the one that reads results: a peer that can run
# without storing results does so everywhere else, as its users who never read them would.
RESULTS = os.environ.get("BENCH_RESULTS") == "1"
COUNTER = "bench:done"
WARM_UP = 50  # a fresh client process warms up (first calls, connections, the GC) over its first few dozen


def spin(n: int) -> int:
    """The CPU-bound body."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def main(adapter: ModuleType) -> None:
    command, *args = sys.argv[1:]
    if command == "worker":
        adapter.run_worker(int(args[0]), args[1:])
    elif command == "enqueue":
        started_at, began = time.time(), time.perf_counter()
        adapter.enqueue(args[0], int(args[1]), int(args[2]) if len(args) > 2 else None)
        print(json.dumps({"seconds": time.perf_counter() - began, "started_at": started_at}))
    elif command == "roundtrip":
        print(json.dumps({"ms": adapter.round_trips(WARM_UP + int(args[0]))[WARM_UP:]}))
    else:
        sys.exit(f"unknown command {command!r}: worker, enqueue or roundtrip")
