"""A local Sentinel deployment for the tests: a master, its replica and N sentinels, each its own
redis-server process on loopback (a sentinel is redis-server --sentinel), optionally with
passwords on the data nodes and on the sentinels."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from tests.conftest import free_port
from tests.workers import wait_for

MASTER = "mymaster"


class SentinelSet:
    """A master, its replica and ``sentinels`` sentinels on loopback, each its own redis-server process."""

    def __init__(self, workdir: Path, sentinels: int = 3, password: str = "", sentinel_password: str = ""):
        self.workdir, self.password, self.sentinel_password = workdir, password, sentinel_password
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.master_port, self.replica_port = free_port(), free_port()
        auth = ("--requirepass", password, "--masterauth", password) if password else ()
        self._server(self.master_port, *auth)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port), *auth)
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        for port in self.sentinel_ports:
            self._sentinel(port, quorum=min(2, sentinels))
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        userinfo = f":{password}@" if password else ""
        query = f"?sentinel_password={sentinel_password}" if sentinel_password else ""
        self.url = f"redis+sentinel://{userinfo}{hosts}/{MASTER}/0{query}"

    def _sentinel(self, port: int, quorum: int) -> None:
        lines = [f"port {port}", "bind 127.0.0.1", f"dir {self.workdir}",
                 f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} {quorum}",
                 f"sentinel down-after-milliseconds {MASTER} 1000", f"sentinel failover-timeout {MASTER} 10000"]
        if self.password:
            lines.append(f"sentinel auth-pass {MASTER} {self.password}")
        if self.sentinel_password:  # asked of clients and of the peer sentinels alike
            lines += [f"requirepass {self.sentinel_password}", f"sentinel sentinel-pass {self.sentinel_password}"]
        conf = self.workdir / f"sentinel-{port}.conf"  # a sentinel rewrites its own config file
        conf.write_text("\n".join(lines) + "\n")
        self._spawn(port, [str(conf), "--sentinel"])

    def _server(self, port: int, *extra: str) -> None:
        self._spawn(port, ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                           "--dir", str(self.workdir), *extra])

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.workdir / f"redis-{port}.log", "ab")
        self.procs[port] = subprocess.Popen(["redis-server", *args], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def client(self, port: int) -> redis.Redis:
        """A data node's client (or a sentinel's), with the password it asks for."""
        secret = self.sentinel_password if port in self.sentinel_ports else self.password
        return redis.Redis(port=port, password=secret or None, decode_responses=True, socket_timeout=5)

    def wait_ready(self) -> None:
        """Until the replica is in sync and every sentinel knows the replica and its peers (a
        failover needs the quorum to agree)."""
        replica = self.client(self.replica_port)
        wait_for(lambda: answers(lambda: replica.info("replication")["master_link_status"] == "up"),
                 timeout=30, message="the replica in sync")
        for port in self.sentinel_ports:
            wait_for(lambda port=port: answers(lambda: self._knows_all(port)), timeout=60,
                     message=f"sentinel {port} to see its peers and the replica")

    def _knows_all(self, port: int) -> bool:
        with self.client(port) as sentinel:
            return (len(sentinel.execute_command("SENTINEL", "SENTINELS", MASTER)) == len(self.sentinel_ports) - 1
                    and len(sentinel.execute_command("SENTINEL", "REPLICAS", MASTER)) == 1)

    def master_address(self) -> tuple[str, int]:
        with self.client(self.sentinel_ports[0]) as sentinel:
            host, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return host, int(port)

    def kill(self, port: int) -> None:
        self.procs[port].kill()
        self.procs[port].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def answers(check) -> bool:
    """``check()``, or False while the server it asks is down or still starting."""
    try:
        return bool(check())
    except (redis.ConnectionError, redis.ResponseError, KeyError):
        return False


