"""The job context: direct (inline) calls, how set_progress reads its value, reading progress and
logs through a Future, and progress reset when a job is handed back (release, retry, requeue)."""

from __future__ import annotations

from typing import Any

import pytest

import upnext
from tests.apps import reporting
from tests.workers import wait_for
from upnext.context import JobContext
from upnext.job import function_of, is_job_id_of, new_job_id
from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.queue import Queue
from upnext.store.records import Completion, NewJob

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens there: a direct call must not need Redis

inline = upnext.Worker("inline-tests", redis_url=NOWHERE)


@inline.task
def progress_of(current: Any, total: Any = None) -> list:
    ctx = upnext.get_current_context()
    ctx.set_progress(current, "step", total=total)
    return list(ctx.progress or ())


@inline.task(retries=3, retry_delay=1.0, retry_backoff=2.0, timeout=30.0)
def send_email(to: str, subject: str) -> dict:
    """The README's example task, as written there."""
    ctx = upnext.get_current_context()
    ctx.set_progress(50, "rendered")
    ctx.send_log("info", "sending", to=to)
    return {"sent": True}


@inline.task
def sees() -> dict:
    ctx = upnext.get_current_context()
    return {"job_id": ctx.job_id, "parent_id": ctx.parent_id, "root_id": ctx.root_id,
            "is_cancelled": ctx.is_cancelled}


@inline.task
def logs_a_set() -> None:
    upnext.get_current_context().send_log("info", "not JSON", items={1, 2})


@inline.task
def lineage_of_a_submit() -> dict:
    new = progress_of.new_job((1,), {})  # what a submit from here would write (nothing is written)
    return {"parent_id": new.parent_id, "root_id": new.root_id}


# -- direct calls ------------------------------------------------------------------------------
def test_a_direct_call_runs_inline_with_a_job_context_and_no_redis():
    seen = reporting.imports(3)
    assert function_of(seen["job_id"]) == "imports" and is_job_id_of(seen["job_id"], "imports")
    assert (seen["attempt"], seen["max_attempts"]) == (1, 3)
    assert seen["parent_id"] is None and seen["root_id"] == seen["job_id"]
    assert seen["progress"] == [1.0, "importing"] and seen["logs"] == ["imported"]
    assert seen["checkpoint"] == {"done": 3}
    assert progress_of(50) == [0.5, "step"]  # its worker's Redis is unreachable: nothing was sent
    with pytest.raises(RuntimeError, match="outside a running upnext job"):
        upnext.get_current_context()


def test_the_readmes_direct_call_runs_as_written():
    assert send_email("a@b.c", "hi") == {"sent": True}


def test_a_direct_call_made_inside_a_job_is_its_child_and_follows_its_cancellation():
    outer = JobContext(job_id="parent:00aa", function="parent", function_name="parent", attempt=2, max_attempts=3,
                       parent_id=None, root_id="root:00bb")
    with outer.activate():
        seen = sees()
        submit = lineage_of_a_submit()
        outer.is_cancelled = True
        assert sees()["is_cancelled"] is True
    assert (seen["parent_id"], seen["root_id"], seen["is_cancelled"]) == ("parent:00aa", "root:00bb", False)
    assert function_of(seen["job_id"]) == "sees"
    assert submit == {"parent_id": "parent:00aa", "root_id": "root:00bb"}  # the job with a record, not the call


def test_send_log_in_a_direct_call_refuses_what_a_worker_could_not_store():
    with pytest.raises(TypeError, match="not JSON serializable"):
        logs_a_set()


def test_each_direct_call_gets_a_fresh_inline_job_id():
    assert reporting.imports(1)["job_id"] != reporting.imports(1)["job_id"]


def test_a_submit_from_a_top_level_direct_call_has_no_parent():
    assert lineage_of_a_submit() == {"parent_id": "", "root_id": ""}


def test_a_direct_call_inside_a_running_job_is_its_child_and_writes_nothing(start_worker, redis_client):
    start_worker("tests.apps.reporting:worker")
    future = reporting.calls_a_task_directly.submit()
    out = future.value(timeout=10)
    inner = out["inner"]
    assert out["outer"] == future.job_id and function_of(inner["job_id"]) == "imports"
    assert inner["parent_id"] == future.job_id and inner["root_id"] == out["outer_root"] == future.job_id
    assert inner["progress"] == [1.0, "importing"] and inner["logs"] == ["imported"]
    assert out["progress_after"] == [0.1, "outer"]  # the callee's progress is its own
    assert future.progress() == (0.1, "outer") and future.logs() == []
    assert not redis_client.exists(keys.job("upnext", inner["job_id"]))


# -- how set_progress reads its value ----------------------------------------------------------
def test_ints_are_percentages_so_progress_never_goes_backwards():
    assert reporting.counts_in_percent() == [0.0, 0.01, 0.02, 0.03]


@pytest.mark.parametrize(("current", "total", "fraction"), [
    (0, None, 0.0), (1, None, 0.01), (100, None, 1.0), (0.0, None, 0.0), (0.5, None, 0.5), (1.0, None, 1.0),
    (3, 4, 0.75), (0, 10, 0.0), (10, 10, 1.0), (2.5, 10.0, 0.25)])
def test_set_progress_reads_ints_as_percent_floats_as_fractions_and_total_as_a_ratio(current, total, fraction):
    assert progress_of(current, total) == [pytest.approx(fraction), "step"]


@pytest.mark.parametrize(("current", "total", "words"), [
    (101, None, "101"), (-1, None, "-1"), (1.5, None, "1.5"), (float("nan"), None, "nan"),
    (5, 4, "5 of total=4"), (1, 0, "total=0"), (-1, 4, "-1 of total=4")])
def test_out_of_range_progress_is_a_value_error_naming_the_value_and_job(current, total, words):
    with pytest.raises(ValueError, match="progress_of") as info:
        progress_of(current, total)
    assert words in str(info.value) and "progress_of:" in str(info.value)


@pytest.mark.parametrize("current", [True, "50", None])
def test_progress_that_is_not_a_number_is_a_type_error(current):
    with pytest.raises(TypeError, match="progress"):
        progress_of(current)


def test_progress_writes_are_coalesced_and_the_last_value_is_written_at_the_end(queue, redis_client):
    job_id = queue.enqueue(NewJob(new_job_id("imports"), "[]", "{}"))
    (delivery,) = queue.fetch("c1", ["imports"], 1, None)
    queue.start("c1", "w1", [delivery])
    ctx = JobContext(job_id=job_id, function="imports", function_name="imports", attempt=1, max_attempts=1,
                     parent_id=None, root_id=job_id, queue=queue, worker="c1", entry_id=delivery.entry_id)
    for i in range(1, 101):
        ctx.set_progress(i, f"row {i}")
    record = queue.get(job_id) or {}
    assert (record["progress"], record["progress_message"]) == ("0.01", "row 1")  # the rest waited
    ctx.flush_progress()  # as the runner does when the job ends
    assert upnext.Future(job_id, queue).progress() == (1.0, "row 100")


def test_a_job_that_reports_quickly_ends_with_its_last_progress_stored(start_worker):
    start_worker("tests.apps.reporting:worker")
    future = reporting.imports.submit(rows=500)
    assert future.value(timeout=10)["attempt"] == 1
    assert future.progress() == (1.0, "importing")


# -- reading progress and logs -----------------------------------------------------------------
def test_future_progress_and_logs_read_the_record(start_worker, queue):
    future = reporting.imports.options(delay=3600).submit(rows=4)
    assert future.progress() == (0.0, "") and future.logs() == []
    future.cancel()
    start_worker("tests.apps.reporting:worker")
    done = reporting.imports.submit(rows=4)
    done.result(timeout=10)
    assert done.progress() == (1.0, "importing")
    (entry,) = done.logs()
    assert (entry["level"], entry["message"], entry["rows"]) == ("info", "imported", 4) and entry["at"] > 0


def test_progress_of_an_unknown_job_raises_job_not_found(queue):
    with pytest.raises(upnext.JobNotFound, match="imports:00ff"):
        upnext.Future("imports:00ff", queue).progress()


# -- a handed-back job does not keep its old progress ------------------------------------------
def _started_with_progress(queue: Queue, function: str = "imports") -> tuple[str, Any]:
    job_id = queue.enqueue(NewJob(new_job_id(function), "[]", "{}"))
    (delivery,) = queue.fetch("c1", [function], 1, None)
    queue.start("c1", "w1", [delivery])
    assert queue.annotate(job_id, lease=(delivery.entry_id, "c1"), progress=0.97, progress_message="nearly")
    assert upnext.Future(job_id, queue).progress() == (0.97, "nearly")
    return job_id, delivery


def test_release_of_a_started_job_resets_its_progress(queue):
    job_id, delivery = _started_with_progress(queue)
    assert queue.release("c1", [delivery], started=True) == ["ok"]
    assert (queue.get(job_id) or {})["status"] == "queued"
    assert upnext.Future(job_id, queue).progress() == (0.0, "")


def test_release_of_an_unstarted_delivery_leaves_the_progress_of_the_run_that_has_it(queue):
    job_id, delivery = _started_with_progress(queue)
    assert queue.release("c1", [delivery], started=False) == ["ok"]
    assert upnext.Future(job_id, queue).progress() == (0.97, "nearly")


def test_a_retry_resets_progress(queue):
    job_id, delivery = _started_with_progress(queue)
    assert queue.settle("c1", [Completion(delivery, "retry", error="boom", delay_s=3600)]) == ["ok"]
    assert (queue.get(job_id) or {})["status"] == "retrying"
    assert upnext.Future(job_id, queue).progress() == (0.0, "")


def test_an_operator_retry_resets_progress_of_a_failed_job(queue):
    job_id, delivery = _started_with_progress(queue)
    queue.settle("c1", [Completion(delivery, "failed", error="boom", failure_reason="exception")])
    assert upnext.Future(job_id, queue).progress() == (0.97, "nearly")  # a failed job keeps where it stopped
    assert Admin(queue).retry(job_id) == "queued"
    assert upnext.Future(job_id, queue).progress() == (0.0, "")


def test_a_job_waiting_for_its_retry_on_a_worker_shows_no_old_progress(start_worker):
    start_worker("tests.apps.reporting:worker")
    future = reporting.fails_at_97.submit()
    wait_for(lambda: future.status() == "retrying", message="the first attempt to fail")
    assert future.progress() == (0.0, "")
    assert future.cancel()


def test_a_run_reclaimed_from_a_dead_worker_starts_without_the_dead_runs_progress(queue):
    job_id, _ = _started_with_progress(queue)  # c1 "died" holding it
    (again,) = queue.reclaim("c2", "imports", min_idle_ms=0, count=10)
    (reply,) = queue.start("c2", "w2", [again])
    assert reply[0] == "run"
    assert upnext.Future(job_id, queue).progress() == (0.0, "")
