"""Tasks for the upgrade test (tests/test_upgrade.py). The test copies this file into the
previous release's tree, so it uses only what every release has. Each run records in the
ledger which release ran which attempt of which job, so the test reads facts, not timing."""

import json
import os
import time

import redis

import upnext

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("test-upgrade", concurrency=10)
LEDGER = "ledger:upgrade"
_ledger = None


def record(phase: str, **fields) -> None:
    # Not tests.apps.ledger: the previous release's tree has neither it nor upnext.store; a
    # plain client does no I/O when made, so no other greenlet can make a second one meanwhile.
    global _ledger
    if _ledger is None:
        _ledger = redis.Redis.from_url(os.environ["UPNEXT_REDIS_URL"])
    ctx = upnext.get_current_context()
    entry = {"job_id": ctx.job_id, "attempt": ctx.attempt, "release": os.environ["UPNEXT_TEST_RELEASE"],
             "phase": phase, **fields}
    _ledger.rpush(LEDGER, json.dumps(entry))


@worker.task
def add_up(a: int, b: int, tag: str) -> dict:
    record("end")
    return {"sum": a + b, "tag": tag}


@worker.task
def naps(seconds: float, tag: str) -> str:
    record("start")
    time.sleep(seconds)
    record("end")
    return tag


@worker.task
def outlasts(release: str, tag: str) -> str:
    """Outlasts any graceful stop on ``release`` (so it is handed back); returns at once on the other."""
    record("start")
    if os.environ["UPNEXT_TEST_RELEASE"] == release:
        time.sleep(120)
    record("end")
    return tag


@worker.task(retries=20, retry_delay=0.5, retry_backoff=1.0)
def fails_on(release: str, tag: str) -> dict:
    """Fails every attempt that runs on ``release`` and succeeds on the other one."""
    here = os.environ["UPNEXT_TEST_RELEASE"]
    record("failed" if here == release else "end")
    if here == release:
        raise RuntimeError(f"{tag} fails on the {here} release")
    return {"tag": tag, "ran_on": here}
