"""Chaos fixtures: a ledger of executions, and helpers to count what was lost or run twice."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.workers import WorkerProcess
from upnext.store import keys

APP = "tests.chaos.app:worker"


@pytest.fixture
def ledger(redis_client, redis_url, monkeypatch):
    monkeypatch.setenv("LEDGER_URL", redis_url)
    return redis_client


class Fleet:
    """Worker processes of one scenario; killing one records what it was running."""

    def __init__(self, tmp_path, ledger, env):
        self.tmp_path, self.ledger, self.env = tmp_path, ledger, env
        self.workers: list[WorkerProcess] = []
        self.in_flight_at_kills = 0
        self.kills = 0

    def start(self, *args: str) -> WorkerProcess:
        worker = WorkerProcess(APP, *args, log_path=self.tmp_path / f"w{len(self.workers)}.log", env=self.env)
        self.workers.append(worker)
        return worker

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.proc.poll() is None]

    def kill_one(self) -> None:
        """SIGKILL a random worker; count what it held un-acknowledged (running, or finished but
        not yet written): only those may run twice."""
        victim = random.choice(self.alive())
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        self.in_flight_at_kills += self.held_by(victim.pid)
        self.kills += 1

    def held_by(self, pid: int) -> int:
        held = 0
        for stream in self.ledger.scan_iter(match="upnext:{*}:stream"):
            for consumer in self.ledger.xinfo_consumers(stream, keys.GROUP):
                if f"-{pid}-" in consumer["name"]:
                    held += consumer["pending"]
        return held

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            print(f"--- {worker.log_path.name} (pid {worker.pid}) ---\n{worker.output()[-3000:]}")


@pytest.fixture
def fleet(tmp_path, ledger):
    made: list[Fleet] = []

    def make(**env: str) -> Fleet:
        made.append(Fleet(tmp_path, ledger, {"LEDGER_URL": os.environ["LEDGER_URL"], **env}))
        return made[-1]

    yield make
    for f in made:
        f.stop()


def duplicates(ledger) -> int:
    return sum(int(n) - 1 for n in ledger.hvals("exec") if int(n) > 1)


def wait_until(predicate, timeout: float, message: str, tick=None, every_s: float = 0.0,
               first_s: float | None = None):
    """Poll ``predicate`` until true, calling ``tick`` (a fault) after ``first_s`` seconds (default
    ``every_s``) and then every ``every_s`` seconds meanwhile."""
    deadline = time.monotonic() + timeout
    next_tick = time.monotonic() + (every_s if first_s is None else first_s)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        if tick is not None and time.monotonic() >= next_tick:
            tick()
            next_tick = time.monotonic() + every_s
        time.sleep(0.05)
