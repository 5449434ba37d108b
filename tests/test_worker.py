"""Tasks end to end: a real worker process (the CLI) and submits from this plain process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

import upnext
from tests.apps import jobs
from tests.workers import wait_for
from upnext.store import keys
from upnext.task import TaskDef


def ledger(client, name):
    return [json.loads(x) for x in client.lrange(f"ledger:{name}", 0, -1)]


@pytest.fixture
def worker(start_worker):
    return start_worker("tests.apps.jobs:worker", "--concurrency", "20")


def test_submit_returns_result_from_a_worker_process(worker):
    future = jobs.add.submit(2, 3)
    result = future.result(timeout=10)
    assert result.value == 5 and result.ok and result.status == "complete"
    assert result.attempts == 1 and result.root_id == future.job_id and result.parent_id is None
    assert result.started_at <= result.completed_at
    assert future.status() == "complete"
    assert jobs.add.wait(a=1, b=1, wait_timeout=10).value == 2


def test_direct_call_runs_inline_without_redis():
    assert jobs.add(20, 22) == 42


def test_retries_back_off_exponentially_and_see_the_last_checkpoint(worker, redis_client):
    result = jobs.fails_until.submit(3).result(timeout=20)
    assert result.value == {"attempt": 3} and result.attempts == 3
    runs = ledger(redis_client, "fails_until")
    assert [r["attempt"] for r in runs] == [1, 2, 3]
    assert [r["last_checkpoint"] for r in runs] == [None, {"reached": 1}, {"reached": 2}]
    gaps = [b["at"] - a["at"] for a, b in zip(runs, runs[1:])]
    # retry_delay 0.2 s, backoff 2: the waits are 0.2 s then 0.4 s (promotion adds a little)
    assert 0.18 <= gaps[0] < 0.2 + 0.5 and 0.38 <= gaps[1] < 0.4 + 0.5, gaps


def test_final_failure_raises_task_execution_error_with_the_error(worker):
    future = jobs.fails_until.submit(10)
    with pytest.raises(upnext.TaskExecutionError) as info:
        future.result(timeout=20)
    assert info.value.job_id == future.job_id and info.value.status == "failed"
    assert "attempt 4 fails" in info.value.error
    assert info.value.task_result.attempts == 4
    assert not isinstance(info.value, upnext.TaskTimeoutError)


def test_job_timeout_raises_task_timeout_error(worker):
    with pytest.raises(upnext.TaskTimeoutError) as info:
        jobs.sleeps_past_timeout.wait(wait_timeout=10)
    assert "timed out after 0.3s" in info.value.error
    assert info.value.task_result.failure_reason == "timeout"


def test_waiter_timeout_raises_builtin_timeout_error_and_leaves_the_job_alone(worker, redis_client):
    future = jobs.waits_for_gate.submit("w")  # not done at the timeout, however slow the machine
    with pytest.raises(TimeoutError) as info:
        future.result(timeout=0.1)
    assert not isinstance(info.value, upnext.TaskExecutionError)
    redis_client.set("gate", 1)
    assert future.result(timeout=10).value == "w"


def test_idempotent_submit_returns_the_live_job_and_frees_the_key_when_it_ends(worker, redis_client):
    # The first job lives until the gate opens: a 0.3 s job could end before a stalled second submit.
    first = jobs.waits_for_gate.submit_idempotent("order-1", "a")
    second = jobs.waits_for_gate.submit_idempotent("order-1", "b")
    assert second.job_id == first.job_id
    redis_client.set("gate", 1)
    assert first.value(timeout=10) == "a"
    third = jobs.waits_for_gate.submit_idempotent("order-1", "c")
    assert third.job_id != first.job_id and third.value(timeout=10) == "c"
    assert jobs.sleep_for.wait_idempotent("order-2", 0.0, "d", wait_timeout=10).value == "d"


def test_delayed_job_does_not_run_early(worker, redis_client):
    submitted_at = time.time()
    future = jobs.sleep_for.options(delay=0.8).submit(0, "late")
    assert future.value(timeout=10) == "late"
    start = next(r for r in ledger(redis_client, "sleep_for") if r["phase"] == "start")
    assert start["at"] >= submitted_at + 0.8
    eta = datetime.now(UTC) + timedelta(seconds=0.5)
    future = jobs.sleep_for.options(eta=eta).submit(0, "eta")
    assert future.value(timeout=10) == "eta"
    start = [r for r in ledger(redis_client, "sleep_for") if r["tag"] == "eta"][0]
    assert start["at"] >= eta.timestamp()


def test_cancel_a_queued_job_means_it_never_runs(worker, redis_client):
    # Due in an hour, not in 0.5 s: a test process stalled that long on a loaded machine let the
    # worker run it first, and cancel() then found it complete.
    future = jobs.sleep_for.options(delay=3600).submit(0, "never")
    scheduled = keys.scheduled("upnext", "sleep_for")
    assert future.status() == "queued" and redis_client.zscore(scheduled, future.job_id) is not None
    assert future.cancel() is True
    assert redis_client.zscore(scheduled, future.job_id) is None  # nothing left to promote and run
    assert future.cancel() is False
    with pytest.raises(upnext.TaskExecutionError) as info:
        future.result(timeout=5)
    assert info.value.status == "cancelled"
    marker = jobs.sleep_for.submit(0, "after").value(timeout=10)
    assert marker == "after"
    assert [r["tag"] for r in ledger(redis_client, "sleep_for")] == ["after", "after"]


def test_cancel_a_running_job_is_seen_by_the_job_and_never_becomes_complete(worker, redis_client):
    future = jobs.waits_for_cancel.submit()
    wait_for(lambda: ledger(redis_client, "waits_for_cancel"), message="job started")
    assert future.cancel() is True
    wait_for(lambda: len(ledger(redis_client, "waits_for_cancel")) == 2, message="job noticed cancel")
    assert ledger(redis_client, "waits_for_cancel")[1]["phase"] == "noticed"
    with pytest.raises(upnext.TaskExecutionError) as info:
        future.result(timeout=5)
    assert info.value.status == "cancelled"
    # The job returned normally after the cancel: its late completion must not overwrite it.
    wait_for(lambda: redis_client.xlen("upnext:{waits_for_cancel}:stream") == 0, message="entry acked")
    assert future.status() == "cancelled"


def test_non_json_argument_is_refused_before_anything_is_written(redis_client):
    with pytest.raises(TypeError, match="argument 'b' is not JSON-serializable"):
        jobs.add.submit(1, object())
    with pytest.raises(TypeError, match="add\\(\\)"):
        jobs.add.submit(1, 2, 3)
    assert redis_client.dbsize() == 0


def test_non_json_result_fails_the_job_clearly_and_runs_it_once(worker):
    future = jobs.returns_a_set.submit()
    with pytest.raises(upnext.TaskExecutionError) as info:
        future.result(timeout=10)
    assert "not JSON-serializable" in info.value.error and info.value.task_result.attempts == 1
    assert jobs.add.wait(1, 1, wait_timeout=10).value == 2


def test_progress_and_logs_are_stored_with_the_job(worker, redis_client):
    future = jobs.reports.submit()
    assert future.value(timeout=10) == "done"
    record = redis_client.hgetall(f"upnext:{{reports}}:job:{future.job_id}")
    assert float(record["progress"]) == pytest.approx(0.4) and record["progress_message"] == "working"
    (log_entry,) = future.logs()
    assert log_entry["message"] == "imported" and log_entry["rows"] == 10


def test_jobs_submitted_from_a_job_carry_lineage_and_nested_waits_do_not_deadlock(start_worker):
    start_worker("tests.apps.jobs:worker", "--concurrency", "1")
    future = jobs.parent.submit(3)
    *children, ids = future.value(timeout=30)
    assert [c["i"] for c in children] == [0, 1, 2]
    assert all(c["parent_id"] == future.job_id and c["root_id"] == future.job_id for c in children)
    assert ids == {"parent": future.job_id, "root": future.job_id}


def test_process_executor_runs_in_another_pid_and_a_timeout_kills_the_child(worker):
    pid = jobs.in_process.wait(0, wait_timeout=30).value
    assert pid != worker.pid
    with pytest.raises(upnext.TaskTimeoutError):
        jobs.in_process.wait(5.0, wait_timeout=30)
    assert jobs.in_process.wait(0, wait_timeout=30).value not in (pid, worker.pid)


def test_cancelling_a_running_process_job_terminates_its_child(worker, redis_client):
    future = jobs.process_sleeps.submit(30)
    (started,) = wait_for(lambda: ledger(redis_client, "process_sleeps"), timeout=20, message="job started")
    assert future.cancel() is True
    with pytest.raises(upnext.TaskExecutionError) as info:
        future.result(timeout=5)
    assert info.value.status == "cancelled"
    wait_for(lambda: not _alive(started["pid"]), message=f"child {started['pid']} killed")
    assert future.status() == "cancelled"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_crashed_process_child_fails_its_job_not_the_worker(worker):
    with pytest.raises(upnext.TaskExecutionError, match="died with exit code -9"):
        jobs.kills_its_child.wait(wait_timeout=30)
    assert jobs.add.wait(2, 2, wait_timeout=10).value == 4


def test_greenlets_run_concurrently(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker", "--concurrency", "200")
    futures = [jobs.sleep_for.submit(0.1, str(i)) for i in range(200)]
    for f in futures:
        f.result(timeout=30)
    runs = ledger(redis_client, "sleep_for")
    span = max(r["at"] for r in runs if r["phase"] == "end") - min(r["at"] for r in runs if r["phase"] == "start")
    # 200 x 0.1 s one after another would take 20 s; run together, about 0.1 s plus overhead.
    assert len(runs) == 400 and span < 1.5, span


def test_a_task_with_no_backlog_is_not_starved_by_a_busy_one(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker", "--concurrency", "2")
    backlog = upnext.submit_many(jobs.sleep_for, [{"seconds": 0.1, "tag": str(i)} for i in range(60)])
    wait_for(lambda: ledger(redis_client, "sleep_for"), timeout=10)  # the busy task is running
    assert jobs.add.submit(1, 2).result(timeout=20).value == 3
    # Two slots and 60 x 0.1 s: the backlog needs 3 s; the lone job ran well before its end.
    ended = [r for r in ledger(redis_client, "sleep_for") if r["phase"] == "end"]
    assert len(ended) < len(backlog) / 2, len(ended)


def test_async_functions_are_refused_at_decoration():
    w = upnext.Worker("refuses-async")
    with pytest.raises(TypeError, match="async def"):
        @w.task
        async def nope():
            return 1


@pytest.mark.parametrize("option, value", [("retries", -1), ("timeout", 0), ("retry_delay", "x"),
                                           ("executor", "fork")])
def test_bad_task_options_fail_at_decoration_naming_the_option(option, value):
    with pytest.raises(ValueError, match=f"task 't': {option}"):
        TaskDef("t", lambda: None, **{option: value})


def test_backoff_of_the_nth_retry():
    definition = TaskDef("t", lambda: None, retries=3, retry_delay=1.0, retry_backoff=2.0, retry_jitter=False)
    assert [definition.retry_delay_s(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert definition.max_attempts == 4


def test_unknown_job_id_is_named_in_the_error():
    with pytest.raises(upnext.JobNotFound, match="add:0000"):
        jobs.worker.future("add:0000").status()


def test_upnext_run_serves_a_worker_in_a_plain_script(tmp_path, redis_client):
    script = tmp_path / "script.py"
    script.write_text(
        "from gevent import monkey\nmonkey.patch_all()\n"
        "import upnext\nworker = upnext.Worker('script')\n"
        "@worker.task\ndef double(x):\n    return 2 * x\n"
        "if __name__ == '__main__':\n    raise SystemExit(upnext.run(worker))\n")
    submitter = upnext.Worker("script")  # the same task, declared here without importing the script

    @submitter.task
    def double(x):
        return 2 * x

    future = double.submit(21)
    done = subprocess.run([sys.executable, str(script)], env={**os.environ, "UPNEXT_BURST": "1"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert future.value(timeout=1) == 42


def test_drain_runs_queued_jobs_in_this_process_through_the_real_serializer(redis_client):
    ok = jobs.add.submit(1, 2)
    bad = jobs.returns_a_set.submit()
    later = jobs.add.options(delay=3600).submit(0, 0)
    assert upnext.drain(jobs.worker) == 2
    assert ok.value(timeout=1) == 3
    with pytest.raises(upnext.TaskExecutionError, match="not JSON-serializable"):
        bad.result(timeout=1)
    assert later.status() == "queued"
    assert redis_client.xlen("upnext:{add}:stream") == 0


def test_greenlets_submitting_at_once_from_a_fresh_gevent_process_all_succeed(redis_client):
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import gevent, upnext\n"
        "w = upnext.Worker('race')\n"
        "@w.task\ndef f(i): ...\n"
        "jobs = [gevent.spawn(lambda i=i: f.submit(i).job_id) for i in range(50)]\n"
        "gevent.joinall(jobs, raise_error=True)\n"
        "print(len({j.value for j in jobs}))\n")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "50"
    assert redis_client.xlen("upnext:{f}:stream") == 50


def test_task_hooks_run_in_order_through_a_retry_and_a_final_failure(worker, redis_client):
    assert jobs.hooked.submit(1).value(timeout=20) == "ok"
    assert redis_client.lrange("hooks", 0, -1) == [
        "on_start:1", "on_retry:1", "on_start:2", "on_success:2", "on_complete:2"]
    redis_client.delete("hooks")
    with pytest.raises(upnext.TaskExecutionError):
        jobs.hooked.submit(5).result(timeout=20)
    assert redis_client.lrange("hooks", 0, -1) == [
        "on_start:1", "on_retry:1", "on_start:2", "on_failure:2", "on_complete:2"]


def test_config_file_job_hooks_wrap_every_job(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker", "-c", "tests/apps/hooks_conf.py")
    assert jobs.add.wait(1, 2, wait_timeout=10).value == 3
    with pytest.raises(upnext.TaskExecutionError):
        jobs.fails_until.submit(99).result(timeout=30)
    hooks = redis_client.lrange("config_hooks", 0, -1)
    assert hooks[:2] == ["pre_job:add", "post_job:add:3"]
    # on_job_error sees every failed attempt, with the job's own exception
    assert hooks.count("pre_job:fails_until") == 4
    assert [h for h in hooks if h.startswith("on_job_error")] == [
        f"on_job_error:fails_until:attempt {n} fails" for n in range(1, 5)]
