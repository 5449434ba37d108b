"""Process-pool tasks for the pool and signal tests. Each writes what it did to a ledger in
Redis from inside its child, so a test reads facts (started, pid, ended) instead of guessing
from timing."""

import json
import os
import signal
import time

import upnext
from tests.apps import ledger

worker = upnext.Worker("test-procjobs")


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
