"""Test fixtures: a private redis-server on a free loopback port (or ``UPNEXT_TEST_REDIS_URL``),
flushed before each test, and real worker processes started through the CLI.

Waiting is always ``tests.workers.wait_for`` (a condition polled with a deadline), never a sleep.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis

from tests.workers import ROOT, WorkerProcess, stop_all, wait_for
from upnext.store.queue import Queue

START_ATTEMPTS = 3  # a free port can be taken by someone else before redis-server binds it

# Every subprocess the suite starts (workers, the CLI from a temporary directory, the example
# projects) imports this tree, never whatever `upnext` happens to be installed: a test of a
# checkout or a worktree must test that checkout. A subprocess's own cwd still comes first.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))


class RedisServer:
    """A throwaway ``redis-server``: loopback only, no persistence (unless ``extra`` asks), its files in
    ``workdir``."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None, extra: Sequence[str] = ()):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = workdir / f"redis-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(workdir), *extra], stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """True once PING answers; False if the server exited first (e.g. its port was taken)."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            wait_for(lambda: self.proc.poll() is not None or _pings(client), timeout=timeout,
                     message=f"redis-server on port {self.port} to answer PING:\n{self.output()}")
        finally:
            client.close()
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def free_port() -> int:
    """A loopback port nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _start_redis(workdir: Path, extra: Sequence[str] = ()) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed, and the tests need a real one: install it "
                    "(apt-get install redis-server) or point UPNEXT_TEST_REDIS_URL at a server they may flush",
                    pytrace=False)
    for _ in range(START_ATTEMPTS):
        server = RedisServer(binary, workdir, extra=extra)
        if server.wait_ready():
            return server
    pytest.fail(f"redis-server did not start after {START_ATTEMPTS} attempts:\n{server.output()}", pytrace=False)


def _check_external(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"UPNEXT_TEST_REDIS_URL={url} does not answer PING: {exc}", pytrace=False)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test server's URL, also exported as UPNEXT_REDIS_URL so worker processes find it.
    Every test flushes it: an ``UPNEXT_TEST_REDIS_URL`` must point at a disposable server."""
    server = None
    url = os.environ.get("UPNEXT_TEST_REDIS_URL")
    if url:
        _check_external(url)
    else:
        server = _start_redis(tmp_path_factory.mktemp("redis"))
        url = server.url
    previous = os.environ.get("UPNEXT_REDIS_URL")
    os.environ["UPNEXT_REDIS_URL"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("UPNEXT_REDIS_URL", None)
        else:
            os.environ["UPNEXT_REDIS_URL"] = previous
        if server is not None:
            server.stop()


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A redis-server of the test's own that ``stop()`` and ``start()`` replace by a new process on
    the same port, as a restart or failover does. Append-only with fsync always: what it
    acknowledged survives the restart, so a test sees the clients' reconnection, not lost data."""
    extra = ("--appendonly", "yes", "--appendfsync", "always")
    server = SimpleNamespace(current=_start_redis(tmp_path, extra))  # fails loudly without redis-server
    server.url, server.port = server.current.url, server.current.port

    def start() -> None:
        server.current = RedisServer(shutil.which("redis-server") or "redis-server", tmp_path, server.port, extra)
        assert server.current.wait_ready(), f"redis-server did not restart on port {server.port}"

    server.stop, server.start = lambda: server.current.stop(), start
    yield server
    server.current.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def queue(redis_client: redis.Redis) -> Queue:
    return Queue(redis_client, prefix="upnext")


@pytest.fixture
def start_worker(redis_client: redis.Redis, tmp_path: Path):
    """Start ``upnext-gevent APP ARGS...``; waits until it registered; stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(app: str, *args: str, env: dict[str, str] | None = None, registered: int = 1,
              cwd: Path = ROOT) -> WorkerProcess:
        before = len(WorkerProcess.worker_ids_in(redis_client))
        proc = WorkerProcess(app, *args, log_path=tmp_path / f"worker{len(started)}.log", env=env, cwd=cwd)
        started.append(proc)
        proc.wait_registered(redis_client, count=before + registered)
        return proc

    yield start
    stop_all(started)
