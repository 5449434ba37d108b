"""``upnext-gevent show JOB_ID`` through the real CLI, on jobs a real worker ran; and the store read
behind it (record and logs in one pipeline)."""

from __future__ import annotations

from tests.apps import reporting
from tests.test_ops import ops, ops_json
from tests.workers import wait_for
from upnext.job import new_job_id
from upnext.store.jobdetail import read_detail
from upnext.store.records import NewJob


def test_show_prints_everything_stored_about_a_failed_job(start_worker):
    start_worker("tests.apps.reporting:worker")
    future = reporting.fails_with_everything.submit(order="A7")
    wait_for(lambda: future.status() == "failed", message="the job to fail")
    view = ops_json("show", future.job_id)
    assert (view["job_id"], view["function"], view["status"]) == (future.job_id, "fails_with_everything", "failed")
    assert (view["args"], view["kwargs"], view["attempts"]) == ([], {"order": "A7"}, 1)
    assert view["error"] == "LookupError: order A7 has no line 4" and view["failure_reason"] == "exception"
    assert "Traceback (most recent call last)" in view["traceback"] and "fails_with_everything" in view["traceback"]
    assert (view["progress"], view["progress_message"]) == (0.03, "checked 3 of 100")
    assert view["checkpoint"] == {"line": 3} and view["checkpoint_at"] > 0
    (entry,) = view["logs"]
    assert (entry["level"], entry["message"], entry["sku"]) == ("warning", "stock low", "A-1")
    assert view["parent_id"] is None and view["root_id"] == future.job_id and view["result"] is None
    assert view["started_at"] <= view["completed_at"]

    text = ops("show", future.job_id)
    assert text.returncode == 0, text.stderr
    for shown in (future.job_id, 'fails_with_everything(order="A7")', "failed (exception)",
                  "LookupError: order A7 has no line 4", "3 %  checked 3 of 100", '{"line":3}',
                  "Traceback (most recent call last)", 'warning stock low sku="A-1"', "UTC"):
        assert shown in text.stdout, shown


def test_show_prints_the_result_and_lineage_of_a_completed_job(start_worker):
    start_worker("tests.apps.reporting:worker")
    future = reporting.calls_a_task_directly.submit()
    value = future.value(timeout=10)
    view = ops_json("show", future.job_id)
    assert view["status"] == "complete" and view["result"] == value and view["error"] is None
    assert (view["progress"], view["progress_message"]) == (0.1, "outer")
    assert "result      {" in ops("show", future.job_id).stdout


def test_show_of_an_unknown_or_malformed_id_names_it_and_exits_non_zero(redis_client):
    unknown = ops("show", "fails_with_everything:00ff")
    assert unknown.returncode == 1 and "'fails_with_everything:00ff'" in unknown.stderr
    assert unknown.stdout == ""
    malformed = ops("show", "garbage", "--json")
    assert malformed.returncode != 0 and "'garbage'" in malformed.stderr


def test_read_detail_returns_the_record_and_the_logs_or_none(queue):
    job_id = queue.enqueue(NewJob(new_job_id("imports"), "[1]", '{"rows": 2}'))
    (delivery,) = queue.fetch("c1", ["imports"], 1, None)
    queue.start("c1", "w1", [delivery])
    queue.annotate(job_id, '{"at": 1.5, "level": "info", "message": "one"}', lease=(delivery.entry_id, "c1"))
    detail = read_detail(queue, job_id)
    assert detail is not None and detail.record["status"] == "active"
    view = detail.to_dict()
    assert (view["args"], view["kwargs"], view["status"], view["attempts"]) == ([1], {"rows": 2}, "active", 1)
    assert view["logs"] == [{"at": 1.5, "level": "info", "message": "one"}] and view["progress"] == 0.0
    assert read_detail(queue, new_job_id("imports")) is None
