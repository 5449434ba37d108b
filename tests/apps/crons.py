"""Crons with options (arguments, overlap=False, retries, max_concurrency) and a plain task that
run-time crons (``cron add``) run, for tests/test_cron_options.py; each run records itself."""

import json
import time

import upnext
from tests.apps import ledger

worker = upnext.Worker("crons", concurrency=6)


def record(name: str, **fields) -> None:
    ctx = upnext.get_current_context()
    entry = {"job_id": ctx.job_id, "attempt": ctx.attempt, "at": time.time(), **fields}
    ledger().rpush(f"ledger:{name}", json.dumps(entry))


@worker.cron("* * * * * *", args=("hello",), kwargs={"times": 2})
def greets(word: str, times: int = 1) -> None:
    record("greets", word=word, times=times)


@worker.cron("* * * * * *", overlap=False)
def slow_report() -> None:
    """Runs while the test holds it (the key ``hold:slow_report``): how long is the test's decision."""
    record("slow_report")
    deadline = time.monotonic() + 30
    while ledger().exists("hold:slow_report") and time.monotonic() < deadline:
        time.sleep(0.02)


@worker.cron("0 0 0 1 1 *", retries=2, retry_delay=0.1, max_concurrency=1, tz="Europe/Berlin")
def flaky() -> str:
    """Fails its first two attempts (a test fires it by moving its cursor into the past)."""
    record("flaky")
    if upnext.get_current_context().attempt < 3:
        raise RuntimeError("flaky: not yet")
    return "third time lucky"


@worker.task
def report(region: str, detail: bool = False) -> None:
    record("report", region=region, detail=detail)
