"""Process-pool tasks for the pool and signal tests. Each writes what it did to a ledger in
Redis from inside its child, so a test reads facts (started, pid, ended) instead of guessing
from timing."""

import json
import os
import signal
import time

import upnext
from tests.apps import ledger

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("test-procjobs", concurrency=10)

# A child that is slow to start (a heavy app import, a loaded machine): the test of the job
# timeout's start sets it, and only process-pool children (which carry the spec) pay it.
if os.environ.get("UPNEXT_CHILD_SPEC") and os.environ.get("TEST_CHILD_IMPORT_S"):
    time.sleep(float(os.environ["TEST_CHILD_IMPORT_S"]))


def record(phase: str, **fields: object) -> None:
    ctx = upnext.get_current_context()
    entry = {"job_id": ctx.job_id, "attempt": ctx.attempt, "pid": os.getpid(), "phase": phase, **fields}
    ledger().rpush(f"ledger:{ctx.function}", json.dumps(entry))


@worker.task(executor="process", timeout=3)
def overruns(seconds: float) -> None:
    record("start")
    time.sleep(seconds)


@worker.task(executor="process")
def child_pid() -> int:
    record("start")
    return os.getpid()


@worker.task(executor="process")
def kills_its_child_after(seconds: float) -> None:
    record("start")
    time.sleep(seconds)
    os.kill(os.getpid(), signal.SIGKILL)


@worker.task(executor="process")
def naps(seconds: float) -> int:
    record("start")
    time.sleep(seconds)
    record("end")
    return os.getpid()


@worker.task
def naps_in_greenlet(seconds: float) -> int:
    record("start")
    time.sleep(seconds)
    record("end")
    return os.getpid()


@worker.task(executor="process")
def returns_surrogate() -> str:
    return "bad \udcff"  # a file name decoded with surrogateescape, say


@worker.task(executor="process", timeout=1.0)
def quick_with_a_short_timeout() -> int:
    return os.getpid()
