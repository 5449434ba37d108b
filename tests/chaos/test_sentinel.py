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
from pathlib import Path

import pytest
import redis

import upnext
from tests.chaos.conftest import duplicates, wait_until
from tests.chaos.test_chaos import report
from tests.conftest import _free_port
from tests.workers import ROOT, wait_for

pytestmark = pytest.mark.chaos
MASTER = "mymaster"
JOBS = 2000


class SentinelSet:
    """A master, its replica and three sentinels on loopback, each its own redis-server process."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.master_port, self.replica_port = _free_port(), _free_port()
        self._server(self.master_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        self.sentinel_ports = [_free_port() for _ in range(3)]
        for port in self.sentinel_ports:
            conf = workdir / f"sentinel-{port}.conf"  # a sentinel rewrites its own config file
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                            f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
                            f"sentinel down-after-milliseconds {MASTER} 1000\n"
                            f"sentinel failover-timeout {MASTER} 10000\n")
            self._spawn(port, [str(conf), "--sentinel"])
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        self.url = f"redis+sentinel://{hosts}/{MASTER}/0"

    def _server(self, port: int, *extra: str) -> None:
        self._spawn(port, ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                           "--dir", str(self.workdir), *extra])

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.workdir / f"redis-{port}.log", "ab")
        self.procs[port] = subprocess.Popen(["redis-server", *args], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=5)

    def wait_ready(self) -> None:
        """Until the replica is in sync and every sentinel knows the replica and its two peers (a
        failover needs the quorum to agree)."""
        replica = self.client(self.replica_port)
        wait_for(lambda: _safe(lambda: replica.info("replication")["master_link_status"] == "up"),
                 timeout=30, message="the replica in sync")
        for port in self.sentinel_ports:
            wait_for(lambda port=port: _safe(lambda: self._knows_all(port)), timeout=60,
                     message=f"sentinel {port} to see its peers and the replica")

    def _knows_all(self, port: int) -> bool:
        sentinel = self.client(port)
        return (len(sentinel.execute_command("SENTINEL", "SENTINELS", MASTER)) == 2
                and len(sentinel.execute_command("SENTINEL", "REPLICAS", MASTER)) == 1)

    def master_address(self) -> tuple[str, int]:
        host, port = self.client(self.sentinel_ports[0]).execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return host, int(port)

    def kill(self, port: int) -> None:
        self.procs[port].kill()
        self.procs[port].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def _safe(check) -> bool:
    try:
        return bool(check())
    except (redis.ConnectionError, redis.ResponseError, KeyError):
        return False


@pytest.fixture
def sentinels(tmp_path) -> Iterator[SentinelSet]:
    made = SentinelSet(tmp_path)
    try:
        made.wait_ready()
        yield made
    finally:
        made.stop()


@pytest.mark.timeout(400)  # three sentinels agreeing, then a failover, on a shared 2-core machine
def test_workers_follow_a_sentinel_failover_without_losing_a_job(fleet, ledger, sentinels):
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
    wait_until(lambda: _safe(lambda: sentinels.master_address()[1] == sentinels.replica_port), timeout=60,
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
