"""Every-second crons, one per missed_run_policy, for the pause tests; each run records itself."""

import json
import time

import upnext
from tests.apps import ledger

worker = upnext.Worker("pausable", concurrency=6)


def record(name: str) -> None:
    ctx = upnext.get_current_context()
    ledger().rpush(f"ledger:{name}", json.dumps({"job_id": ctx.job_id, "at": time.time()}))


@worker.cron("* * * * * *", missed_run_policy=upnext.MissedRunPolicy.CATCH_UP)
def billing() -> None:
    record("billing")


@worker.cron("* * * * * *", missed_run_policy=upnext.MissedRunPolicy.LATEST_ONLY)
def latest() -> None:
    record("latest")


@worker.cron("* * * * * *", missed_run_policy=upnext.MissedRunPolicy.SKIP)
def skipped() -> None:
    record("skipped")
