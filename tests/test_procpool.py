"""The process pool with a real worker process: a job waiting for a child is never stranded,
whatever happens to the child it waits for (timeout, crash, cancel, death while idle)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import upnext
from tests.apps import procjobs
from tests.workers import wait_for
from upnext.store import keys

APP = "tests.apps.procjobs:worker"
ONE_CHILD = {"UPNEXT_PROCESS_POOL_SIZE": "1"}


def ledger(client, task) -> list[dict]:
    return [json.loads(x) for x in client.lrange(f"ledger:{task.name}", 0, -1)]


@pytest.fixture
def one_child_worker(start_worker):
    return start_worker(APP, "--concurrency", "4", env=ONE_CHILD)


def started(client, task, future) -> dict:
    """Wait until ``future``'s job wrote its start line from inside its child."""
    (entry,) = wait_for(lambda: [e for e in ledger(client, task) if e["job_id"] == future.job_id],
                        timeout=30, message=f"job {future.job_id} ({task.name}) started in a child")
    return entry


def queue_behind(busy: upnext.Future) -> upnext.Future:
    """Submit a quick job while ``busy`` holds the only child; make sure it is waiting for that
    child (started by the worker, not yet in a child) while ``busy`` still runs."""
    waiting = procjobs.child_pid.submit()
    wait_for(lambda: waiting.status() == "active", timeout=10, message=f"job {waiting.job_id} taken by the worker")
    assert busy.status() == "active", "precondition: the waiting job must queue behind a running one"
    return waiting


def test_a_job_waiting_for_the_only_child_runs_after_a_timeout_kills_that_child(one_child_worker, redis_client):
    busy = procjobs.overruns.submit(30)
    first = started(redis_client, procjobs.overruns, busy)
    waiting = queue_behind(busy)
    with pytest.raises(upnext.TaskTimeoutError):
        busy.result(timeout=30)
    assert waiting.value(timeout=20) != first["pid"]


def test_a_job_waiting_for_the_only_child_runs_after_that_child_crashes(one_child_worker, redis_client):
    busy = procjobs.kills_its_child_after.submit(3)
    first = started(redis_client, procjobs.kills_its_child_after, busy)
    waiting = queue_behind(busy)
    with pytest.raises(upnext.TaskExecutionError, match="died with exit code -9"):
        busy.result(timeout=30)
    assert waiting.value(timeout=20) != first["pid"]


def test_a_job_waiting_for_the_only_child_runs_after_that_child_is_cancelled(one_child_worker, redis_client):
    busy = procjobs.naps.submit(30)
    first = started(redis_client, procjobs.naps, busy)
    waiting = queue_behind(busy)
    assert busy.cancel() is True
    with pytest.raises(upnext.TaskExecutionError) as info:
        busy.result(timeout=20)
    assert info.value.status == "cancelled"
    assert waiting.value(timeout=20) != first["pid"]



def test_a_job_cancelled_while_waiting_for_a_child_never_runs(one_child_worker, redis_client):
    busy = procjobs.naps.submit(30)
    started(redis_client, procjobs.naps, busy)
    waiting = procjobs.naps.submit(30)
    wait_for(lambda: waiting.status() == "active", timeout=10, message=f"job {waiting.job_id} taken by the worker")
    assert waiting.cancel() is True
    wait_for(lambda: any("job_cancel_noticed" in line and f"job_id={waiting.job_id}" in line
                         for line in one_child_worker.output().splitlines()),
             timeout=10, message=f"the worker to notice job {waiting.job_id} was cancelled")
    assert busy.cancel() is True
    stream = keys.stream("upnext", procjobs.naps.name)
    wait_for(lambda: redis_client.xpending(stream, keys.GROUP)["pending"] == 0, timeout=20,
             message="the worker to finish both cancelled jobs")
    assert (busy.status(), waiting.status()) == ("cancelled", "cancelled")
    assert [e["job_id"] for e in ledger(redis_client, procjobs.naps)] == [busy.job_id]

def _dead(pid: int) -> bool:
    """Gone, or a zombie: its sockets are closed either way."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_jobs_timeout_counts_from_when_its_child_took_it_not_from_the_childs_start(start_worker):
    """A cold pool (the child imports the app first: 2.5 s here) must not eat a 1 s timeout."""
    start_worker(APP, env={**ONE_CHILD, "TEST_CHILD_IMPORT_S": "2.5"})
    result = procjobs.quick_with_a_short_timeout.wait(wait_timeout=30)
    assert result.ok and result.attempts == 1


@pytest.mark.parametrize("wait_until_dead", [True, False], ids=["reaped-or-zombie", "submitted-at-once"])
def test_a_child_killed_while_idle_is_replaced_and_the_next_job_completes(one_child_worker, wait_until_dead):
    for _ in range(3):
        idle_pid = procjobs.child_pid.wait(wait_timeout=30).value
        os.kill(idle_pid, signal.SIGKILL)
        if wait_until_dead:
            wait_for(lambda pid=idle_pid: _dead(pid), message=f"idle child {idle_pid} dead")
        result = procjobs.child_pid.wait(wait_timeout=30)
        assert result.attempts == 1 and result.value != idle_pid
    assert "child_replaced" in one_child_worker.output()


def test_a_child_whose_worker_was_killed_exits_instead_of_finishing_its_job_as_an_orphan(start_worker,
                                                                                         redis_client):
    worker = start_worker(APP, env=ONE_CHILD)
    future = procjobs.naps.submit(60)
    child = started(redis_client, procjobs.naps, future)["pid"]
    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: _dead(child), timeout=10, message=f"orphaned child {child} to exit")
    assert [e["phase"] for e in ledger(redis_client, procjobs.naps)] == ["start"]


def test_a_process_job_whose_result_is_not_utf8_fails_alone_and_is_not_retried(one_child_worker, redis_client):
    bad = procjobs.returns_surrogate.submit()
    with pytest.raises(upnext.TaskExecutionError, match="returns_surrogate .* is not valid UTF-8 text"):
        bad.result(timeout=30)
    assert redis_client.hget(keys.job("upnext", bad.job_id), "attempts") == "1"
    assert procjobs.naps.submit(0).value(timeout=30) > 0  # the pool serves on
