"""``redis+sentinel://`` with passwords: the URL's password goes to the master (and replica), the
``sentinel_password`` query argument to the sentinels. A worker through the CLI, a submitter and
``status`` all resolve the master through a password-protected sentinel; a wrong sentinel password
is one line naming the (masked) URL. The failover itself: tests/chaos/test_sentinel.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

import upnext
from tests.sentinels import SentinelSet
from tests.workers import ROOT, WorkerProcess, stop_all

MASTER_PW, SENTINEL_PW = "master-secret", "sentinel-secret"


@pytest.fixture
def guarded(tmp_path) -> Iterator[SentinelSet]:
    made = SentinelSet(tmp_path, sentinels=1, password=MASTER_PW, sentinel_password=SENTINEL_PW)
    workers: list[WorkerProcess] = []
    made.workers = workers
    try:
        made.wait_ready()
        yield made
    finally:
        stop_all(workers)
        made.stop()


def _status(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "upnext.cli", "status", "--json", "--redis-url", url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_worker_submitter_and_status_resolve_the_master_through_a_guarded_sentinel(guarded, tmp_path):
    worker = WorkerProcess("tests.apps.jobs:worker", "--redis-url", guarded.url, log_path=tmp_path / "worker.log")
    guarded.workers.append(worker)
    worker.wait_registered(guarded.client(guarded.master_port), timeout=60)
    submitter = upnext.Worker("sentinel-submitter", redis_url=guarded.url)

    @submitter.task
    def add(a: int, b: int) -> int: ...

    assert add.submit(2, 3).value(timeout=60) == 5  # the waiter's pub/sub through the resolved master too
    done = _status(guarded.url)
    assert done.returncode == 0, done.stderr
    assert [w["pid"] for w in json.loads(done.stdout)["workers"]] == [worker.pid]


def test_a_wrong_sentinel_password_is_one_line_naming_the_masked_url(guarded):
    url = guarded.url.replace(SENTINEL_PW, "not-it")
    done = _status(url)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "sentinel_password=***" in done.stderr and ":***@127.0.0.1" in done.stderr
    sentinel = f"127.0.0.1:{guarded.sentinel_ports[0]}"
    assert f"no sentinel names an up master 'mymaster' ({sentinel}: AuthenticationError" in done.stderr, done.stderr
    assert "not-it" not in done.stderr and MASTER_PW not in done.stderr
