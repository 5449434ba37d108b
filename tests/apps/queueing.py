"""Tasks for the queueing tests (expiry, back-pressure, priorities): each run records its tag in
the ledger, so tests read which jobs ran, and in what order, from the jobs themselves."""

import time

import upnext
from tests.apps import ledger

worker = upnext.Worker("queueing", concurrency=1)


@worker.task
def noted(tag: str) -> str:
    ledger().rpush("ledger:noted", tag)
    return tag


@worker.task(expires=0.5)
def short_lived(tag: str) -> str:
    ledger().rpush("ledger:noted", tag)
    return tag


@worker.task(max_queued=2, on_full="block", on_full_timeout=60)
def bounded_block(tag: str) -> str:
    ledger().rpush("ledger:noted", tag)
    return tag


@worker.task
def gate() -> None:
    """Holds the worker's only slot until the test sets ``gate:open``."""
    while not ledger().exists("gate:open"):
        time.sleep(0.01)
