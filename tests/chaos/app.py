"""The chaos suite's worker: every execution is written to a ledger (in the stable test
Redis, LEDGER_URL) so a scenario can count lost and duplicated jobs whatever it broke."""

import os
import time

import upnext
from tests import apps

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("chaos", concurrency=10)


def ledger():
    return apps.ledger("LEDGER_URL")  # the stable server, not the one a scenario breaks


@worker.task
def work(ms: int) -> int:
    job_id = upnext.get_current_context().job_id
    pid = os.getpid()
    ledger().pipeline(transaction=False).hincrby("exec", job_id, 1).sadd(f"running:{pid}", job_id).execute()
    time.sleep(ms / 1000)
    ledger().pipeline(transaction=False).srem(f"running:{pid}", job_id).sadd("effects", job_id).execute()
    return ms


@worker.cron("* * * * * *")
def tick() -> None:
    ledger().rpush("ticks", upnext.get_current_context().job_id)


@worker.task
def exits_its_worker() -> None:
    ledger().incr("exits")
    os._exit(137)


@worker.task(executor="process")
def kills_its_child() -> None:
    os.kill(os.getpid(), 9)


@worker.task(retries=2, retry_delay=0.05)
def returns_surrogate() -> str:
    ledger().hincrby("exec", upnext.get_current_context().job_id, 1)
    return "bad \udcff"  # a file name decoded with surrogateescape, say


@worker.task(retries=2, retry_delay=0.05)
def raises_surrogate() -> None:
    ledger().hincrby("exec", upnext.get_current_context().job_id, 1)
    name = b"caf\xe9.csv".decode("utf-8", "surrogateescape")
    raise ValueError(f"cannot parse {name}")


@worker.task(rate_limit="1/3s")
def exits_rate_limited() -> None:
    ledger().incr("exits")
    os._exit(137)
