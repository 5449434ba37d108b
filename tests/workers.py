"""Real worker processes for tests: started through the real CLI, stopped with real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from upnext.store import keys

ROOT = Path(__file__).resolve().parents[1]


class WorkerProcess:
    """``upnext-gevent APP ARGS...`` in a subprocess; output goes to a log file for failures."""

    def __init__(self, app: str, *args: str, log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path = ROOT, new_session: bool = False):
        """``new_session``: lead a process group of its own, which a test may signal as a whole
        (``os.killpg(pid, sig)``, a terminal's Ctrl-C) without reaching pytest."""
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "upnext.cli", app, *args], cwd=cwd,
                                     env={**os.environ, **(env or {})}, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=new_session)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    @staticmethod
    def worker_ids_in(client: redis.Redis, prefix: str = "upnext") -> list[str]:
        """Ids of the worker processes registered now (their heartbeat key is alive)."""
        return [w for w in client.smembers(keys.worker_ids(prefix)) if client.exists(keys.worker(prefix, w))]

    def worker_ids(self, client: redis.Redis) -> list[str]:
        return self.worker_ids_in(client)

    def wait_registered(self, client: redis.Redis, count: int = 1, timeout: float = 20.0) -> list[str]:
        """Wait until ``count`` worker processes that we started (pid or child pids) registered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.output()}")
            ids = self.worker_ids_in(client)
            if len(ids) >= count:
                return ids
            time.sleep(0.02)
        raise AssertionError(f"worker did not register within {timeout}s:\n{self.output()}")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker did not exit within {timeout}s:\n{self.output()}") from None

    def stop(self) -> None:
        """Teardown: TERM, then KILL if it lingers."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


def stop_all(procs: list[WorkerProcess]) -> None:
    """Teardown of a test's worker processes: stop them all, then print each one's output."""
    for proc in procs:
        proc.stop()
    for proc in procs:
        print(f"--- {proc.log_path.name} (pid {proc.pid}) ---\n{proc.output()}")


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
