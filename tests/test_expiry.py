"""Expiry (SPEC §2c): a job not started by its ``expires`` never runs and ends cancelled with
failure_reason ``expired``, decided by start.lua where the job would start."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

import upnext
from tests.apps.queueing import noted, short_lived
from tests.workers import ROOT, wait_for
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.history import list_jobs
from upnext.store.records import Completion, NewJob

APP = "tests.apps.queueing:worker"


def _past_expiry(queue, *job_ids: str) -> bool:
    """True once Redis's clock (the one start.lua compares with) is past each job's expires_at."""
    now = queue.redis_time()
    return all(float(queue.fields(j, "expires_at")[0]) < now for j in job_ids)


def _cli(*args: str, url: str) -> str:
    done = subprocess.run([sys.executable, "-m", "upnext.cli", *args, "--redis-url", url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_expired_job_never_runs_ends_cancelled_expired_and_wakes_its_waiter(redis_client, redis_url,
                                                                               start_worker):
    late = noted.options(expires=0.3).submit("late")
    default = short_lived.submit("default")  # the task's own expires=0.5
    fresh = noted.options(expires=600).submit("fresh")
    queue = noted.worker.queue
    assert queue.fields(fresh.job_id, "status") == ["queued"]
    raised: list[BaseException] = []
    waiter = threading.Thread(target=lambda: raised.extend(_raises(late)))
    waiter.start()
    wait_for(lambda: _past_expiry(queue, late.job_id, default.job_id), timeout=10, message="expiry passed")
    start_worker(APP, "--burst")
    assert fresh.value(timeout=60) == "fresh"
    waiter.join(60)
    (error,) = raised
    assert isinstance(error, upnext.TaskExecutionError) and error.status == "cancelled"
    assert late.job_id in str(error) and "expired" in str(error)
    with pytest.raises(upnext.TaskExecutionError, match="expired"):
        default.result(timeout=30)
    assert redis_client.lrange("ledger:noted", 0, -1) == ["fresh"]
    for job_id in (late.job_id, default.job_id):
        record = queue.get(job_id)
        assert (record["status"], record["failure_reason"]) == ("cancelled", upnext.FailureReason.EXPIRED)
    rows, _ = list_jobs(queue, ["noted", "short_lived"], status="cancelled")
    assert sorted(r["job_id"] for r in rows) == sorted([late.job_id, default.job_id])
    listed = json.loads(_cli("jobs", "--status", "cancelled", "--json", url=redis_url))
    assert {row["failure_reason"] for row in listed["jobs"]} == {"expired"}
    assert "expired" in _cli("show", late.job_id, url=redis_url)
    shown = json.loads(_cli("show", late.job_id, "--json", url=redis_url))
    assert shown["expires_at"] == float(queue.fields(late.job_id, "expires_at")[0]) and shown["priority"] == "normal"
    assert redis_client.hget(keys.stats_total("upnext", "noted"), "cancelled") == "1"


def _raises(future: upnext.Future) -> list[BaseException]:
    try:
        future.result(timeout=60)
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever the waiter got
        return [exc]
    return []


def test_a_job_that_started_once_does_not_expire_on_its_retry(queue):
    job_id = new_job_id("fn")
    queue.enqueue(NewJob(job_id, "[]", "{}", expires_s=0.2))
    ((delivery, reply),) = queue.take("w1", "w1", {"fn": 1})
    assert reply[0] == "run"
    assert queue.settle("w1", [Completion(delivery, "retry", run_s=0.1)]) == ["ok"]
    wait_for(lambda: _past_expiry(queue, job_id), message="expiry passed")
    assert [reply[0] for _, reply in queue.take("w1", "w1", {"fn": 1})] == ["run"]


def test_the_expiry_is_decided_once_at_start_and_an_operator_retry_runs_the_job(queue):
    job_id = new_job_id("fn")
    queue.enqueue(NewJob(job_id, "[]", "{}", key="k", expires_s=0.2))
    wait_for(lambda: _past_expiry(queue, job_id), message="expiry passed")
    ((delivery, reply),) = queue.take("w1", "w1", {"fn": 1})
    assert reply == ["expired", "k"]
    assert queue.start("w1", "w1", [delivery]) == [["stale"]]  # acked with the expiry: no second decision
    assert queue.client.xlen(keys.stream("upnext", "fn")) == 0
    again = NewJob(new_job_id("fn"), "[]", "{}", key="k")
    assert queue.enqueue(again) == again.job_id  # the expired job freed its idempotency key
    assert queue.cancel(again.job_id)[0] == "cancelled"
    assert Admin(queue).retry(job_id) == "queued"
    assert [(d.job_id, reply[0]) for d, reply in queue.take("w1", "w1", {"fn": 2})] == [
        (again.job_id, "terminal"), (job_id, "run")]


def test_a_job_due_after_its_expiry_is_refused_at_submit_and_nothing_is_written(redis_client):
    with pytest.raises(ValueError, match=r"noted.options\(\): the job would be due in 60s .* expires in 30s"):
        noted.options(delay=60, expires=30).submit("x")
    with pytest.raises(ValueError, match="could never start"):
        short_lived.options(delay=5).submit("x")  # the task's own expires=0.5
    assert redis_client.keys("*") == []


@pytest.mark.parametrize("expires", [0, -1, "60", True, datetime(2030, 1, 1)])
def test_a_bad_expires_is_refused_naming_the_option(expires):
    with pytest.raises(ValueError, match="expires"):
        noted.options(expires=expires)


def test_an_expires_in_the_past_is_refused_and_a_datetime_counts_from_now():
    with pytest.raises(ValueError, match="in the past"):
        noted.options(expires=datetime.now(UTC) - timedelta(seconds=1))
    assert 59 < noted.options(expires=datetime.now(UTC) + timedelta(seconds=60)).expires_s <= 60


def test_a_task_with_a_bad_expires_is_refused_at_decoration():
    worker = upnext.Worker("decorated")
    with pytest.raises(ValueError, match="task 'nope': expires must be a number of seconds > 0"):
        worker.task(name="nope", expires=0)(lambda: None)
