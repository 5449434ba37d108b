"""Test fixtures: a private redis-server on a free loopback port, flushed between tests,
and real worker processes started through the CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from tests.workers import ROOT, WorkerProcess, wait_for
from upnext.queue import Queue


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    url = os.environ.get("UPNEXT_TEST_REDIS_URL")
    proc = None
    if not url:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: the tests need a real one (apt-get install redis-server)")
        port = _free_port()
        workdir = tmp_path_factory.mktemp("redis")
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(workdir)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        wait_for(lambda: _pings(client), timeout=10, message=f"redis-server on port {port}")
    os.environ["UPNEXT_REDIS_URL"] = url
    yield url
    if proc is not None:
        proc.terminate()
        proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def redis_client(redis_url: str):
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
    for proc in started:
        proc.stop()
    for proc in started:
        print(f"--- {proc.log_path.name} (pid {proc.pid}) ---\n{proc.output()}")
