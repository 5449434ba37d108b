"""Sentinel: workers, a submitter and the ops CLI on a ``redis+sentinel://`` URL follow a
failover. A local master, one replica and three sentinels (redis-server --sentinel); the master
is killed (-9) mid-run; every job submitted before (and confirmed replicated with WAIT) completes,
and what ran twice is counted against what was in flight when the master died."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator

import pytest

import upnext
from tests.chaos.conftest import duplicates, wait_until
from tests.chaos.test_chaos import report
from tests.sentinels import SentinelSet, answers
from tests.workers import ROOT

pytestmark = pytest.mark.chaos
JOBS = 2000


@pytest.fixture
def sentinels(tmp_path) -> Iterator[SentinelSet]:
    made = SentinelSet(tmp_path)
    try:
        made.wait_ready()
        yield made
    finally:
        made.stop()


@pytest.mark.timeout(400)  # three sentinels agreeing, then a failover, on a shared 2-core machine
def test_workers_follow_a_sentinel_failover_without_losing_a_job(sentinels, fleet, ledger):  # workers stop first
    f = fleet(UPNEXT_REDIS_URL=sentinels.url, UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="2000")
    for _ in range(2):
        f.start("--concurrency", "20")
    submitter = upnext.Worker("chaos-web", redis_url=sentinels.url)

    @submitter.task(name="work")
    def work(ms: int) -> int: ...

    futures = upnext.submit_many(work, [{"ms": random.randint(5, 30)} for _ in range(JOBS)])
    master = sentinels.client(sentinels.master_port)
    assert master.execute_command("WAIT", 1, 10000) == 1  # every submitted job is on the replica too
    wait_until(lambda: ledger.scard("effects") > JOBS // 4, timeout=120, message="a quarter of the jobs done")
    in_flight = sum(int(c["pending"]) for c in master.xinfo_consumers("upnext:{work}:stream", "workers"))
    sentinels.kill(sentinels.master_port)
    wait_until(lambda: answers(lambda: sentinels.master_address()[1] == sentinels.replica_port), timeout=60,
               message="the sentinels to promote the replica")
    wait_until(lambda: ledger.scard("effects") == JOBS, timeout=180, message="every job to run after the failover")
    upnext.gather(*futures, timeout=120)  # the waiter, over the new master
    lost = sum(1 for fut in futures if fut.status() != "complete")
    dups = duplicates(ledger)
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "status", "--json", "--redis-url", sentinels.url],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    alive = [w for w in json.loads(done.stdout)["workers"] if w["alive"]]
    report("sentinel_failover", jobs=JOBS, lost=lost, duplicates=dups, in_flight_at_kill=in_flight,
           workers_alive_after=len(alive))
    assert lost == 0 and len(alive) == 2 and all(w.proc.poll() is None for w in f.workers)
