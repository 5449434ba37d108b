"""Tasks that log, for tests/test_logs.py: a failure raised a few frames deep, stdlib ``logging``
calls with ``extra=`` fields (from greenlets running at once and from a pool child)."""

import logging
import time

import upnext
from tests.apps import ledger

worker = upnext.Worker("test-logged")
applog = logging.getLogger("tests.logged")


def _parse_row(row: str) -> int:
    raise ValueError(f"bad row {row!r}")


@worker.task(retries=1, retry_delay=0)
def imports_row(row: str) -> int:
    return _parse_row(row)


@worker.task
def logs_while_another_runs(tag: str, together: int, limit_s: float = 20.0) -> str:
    """Logs, waits until ``together`` jobs have logged (so their greenlets interleave), logs again."""
    applog.info("row_imported", extra={"tag": tag, "row": 1})
    ledger().rpush("logged", tag)
    deadline = time.monotonic() + limit_s
    while ledger().llen("logged") < together:
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {tag}: the other jobs did not log within {limit_s}s")
        time.sleep(0.01)
    applog.info("row_imported", extra={"tag": tag, "row": 2})
    return tag


@worker.task(executor="process")
def logs_in_a_child(tag: str) -> str:
    applog.info("row_imported", extra={"tag": tag, "row": 1})
    return tag


@worker.task
def quick() -> str:
    return "done"
