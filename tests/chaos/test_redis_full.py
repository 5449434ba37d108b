"""Chaos: the queue's Redis fills up mid-run (maxmemory reached under noeviction), then gets room
again. Submits meanwhile are refused at once; the worker stays alive, says why in its health
file, and every accepted job completes exactly once. The ledger lives in the stable test Redis,
so the jobs' own bookkeeping never meets the full one."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import upnext
from tests.chaos.conftest import duplicates, wait_until
from tests.chaos.test_chaos import report
from tests.conftest import free_port
from tests.test_bounds import fill
from tests.workers import wait_for

pytestmark = pytest.mark.chaos
JOBS = 3000


@pytest.fixture
def queue_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A redis-server of the scenario's own, with noeviction, that it may fill."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, decode_responses=True)
    wait_for(lambda: _pings(client), message=f"redis-server on port {port}")
    yield client
    client.close()
    proc.terminate()
    proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_redis_that_fills_up_mid_run_loses_no_job(queue_redis, fleet, ledger, tmp_path):
    url = f"redis://127.0.0.1:{queue_redis.connection_pool.connection_kwargs['port']}/0"
    health = tmp_path / "health"
    f = fleet(UPNEXT_REDIS_URL=url, UPNEXT_HEALTH_FILE=str(health), UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="3000")
    f.start("--concurrency", "50")
    submitter = upnext.Worker("chaos-web", redis_url=url)

    @submitter.task(name="work")
    def work(ms: int) -> int: ...

    wait_for(lambda: health.exists(), timeout=20, message="the worker's first heartbeat")
    futures = upnext.submit_many(work, [{"ms": random.randint(20, 60)} for _ in range(JOBS)])
    wait_until(lambda: ledger.scard("effects") >= 300, timeout=30, message="the burst under way")
    fill(queue_redis)
    done_when_full = ledger.scard("effects")
    refused, slowest = 0, 0.0
    for _ in range(20):
        began = time.monotonic()
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            work.submit(ms=1)
        refused += 1
        slowest = max(slowest, time.monotonic() - began)
    state = wait_for(lambda: health.read_text().startswith("redis_full") and health.read_text(), timeout=20,
                     message="the health file saying Redis is full")
    assert all(w.proc.poll() is None for w in f.workers)
    queue_redis.config_set("maxmemory", 0)
    for key in queue_redis.scan_iter(match="junk:*", count=1000):
        queue_redis.delete(key)
    wait_until(lambda: ledger.scard("effects") == JOBS, timeout=120, message="every accepted job to run")
    results = upnext.gather(*futures, return_exceptions=True, timeout=60)
    lost = sum(1 for r in results if isinstance(r, Exception))
    dups = duplicates(ledger)
    wait_for(lambda: health.read_text() == "ok\n", timeout=20, message="the health file back to ok")
    report("redis_full", jobs=JOBS, done_before_full=done_when_full, refused_submits=refused,
           slowest_refusal_s=round(slowest, 3), lost=lost, duplicates=dups, health=state.split(":")[0])
    assert lost == 0 and dups == 0 and slowest < 1
