"""The job detail's runs and children, and privacy (hide_args, the redact hook), through
``upnext-gevent show`` and ``jobs`` on real worker processes, and at the queue on the real server."""

from __future__ import annotations

import json

from tests.apps import flows, jobs, reporting
from tests.test_ops import ops, ops_json
from tests.test_queue import F, done, enqueue, take
from tests.workers import wait_for
from upnext.store.admin import Admin
from upnext.store.jobdetail import read_detail

CARD = "4111111111111111"


def test_show_lists_each_run_of_a_retried_job_with_its_worker_and_outcome(start_worker):
    start_worker("tests.apps.jobs:worker")
    future = jobs.fails_until.submit(2)
    future.result(timeout=20)
    view = ops_json("show", future.job_id)
    first, second = view["runs"]
    assert (first["attempt"], first["outcome"], second["attempt"], second["outcome"]) == (1, "retry", 2, "complete")
    assert "attempt 1 fails" in first["error"] and second["error"] == ""
    assert first["worker"] and first["worker"] == second["worker"]
    assert first["started_at"] <= first["ended_at"] <= second["started_at"] <= second["ended_at"]
    text = ops("show", future.job_id).stdout
    assert "runs (2)" in text and "#1  retry" in text and "#2  complete" in text, text


def test_show_lists_the_children_of_a_workflow_job(start_worker):
    start_worker("tests.apps.flows:worker")
    future = flows.tree.submit(1, 2)
    value = future.value(timeout=30)
    view = ops_json("show", future.job_id)
    assert sorted(view["children"]) == sorted(child["job"] for child in value["children"])
    child = ops_json("show", view["children"][0])
    assert (child["parent_id"], child["root_id"], child["children"]) == (future.job_id, future.job_id, [])
    listed = ops_json("jobs", "--root", future.job_id)["jobs"]
    assert sorted(r["job_id"] for r in listed) == sorted([future.job_id, *view["children"]])


def test_hide_args_keeps_arguments_and_result_out_of_show(start_worker):
    start_worker("tests.apps.reporting:worker")
    future = reporting.charges.submit(CARD)
    assert future.value(timeout=10) == {"charged": "1111", "token": "tok-" + CARD}  # the caller still gets it
    view = ops_json("show", future.job_id)
    assert (view["args"], view["kwargs"], view["result"]) == ("hidden", "hidden", "hidden")
    text = ops("show", future.job_id)
    assert "charges(hidden)" in text.stdout and CARD not in text.stdout + text.stderr, text.stdout


def test_a_redact_hook_rewrites_what_show_and_jobs_print(start_worker, tmp_path):
    conf = tmp_path / "views.conf.py"
    conf.write_text("def _scrub(text):\n"
                    "    return text.replace('A7', '<order>') if text else text\n"
                    "def redact(view):\n"
                    "    view['error'] = _scrub(view.get('error'))\n"
                    "    for run in view.get('runs', []):\n"
                    "        run['error'] = _scrub(run['error'])\n"
                    "    view.pop('traceback', None)\n"
                    "    return view\n")
    start_worker("tests.apps.reporting:worker")
    future = reporting.fails_with_everything.submit(order="A7")
    wait_for(lambda: future.status() == "failed", message="the job to fail")
    shown = ops_json("show", future.job_id, "-c", str(conf))
    assert shown["error"] == "LookupError: order <order> has no line 4" and "traceback" not in shown
    text = ops("show", future.job_id, "-c", str(conf)).stdout
    assert "A7" not in text.replace('order="A7"', "") and "Traceback" not in text, text
    (row,) = ops_json("jobs", "--status", "failed", "-c", str(conf))["jobs"]
    assert row["error"] == "LookupError: order <order> has no line 4"
    conf.write_text("def redact(view):\n    return None\n")
    bad = ops("show", future.job_id, "-c", str(conf))
    assert bad.returncode == 1 and "redact in config file" in bad.stderr and "must return a dict" in bad.stderr
    conf.write_text("def redact():\n    return {}\n")
    bad = ops("jobs", "-c", str(conf))
    assert bad.returncode == 1 and "hook redact" in bad.stderr and "must accept 1 argument" in bad.stderr


def test_a_released_run_and_an_ended_run_requeued_by_an_operator_stay_in_the_runs(queue):
    job_id = enqueue(queue)
    delivery, _ = take(queue)
    assert queue.release("c1", [delivery], started=True) == ["ok"]
    delivery, _ = take(queue)
    queue.settle("c1", [done(delivery, "failed", error="boom", run_s=0.1)])
    assert Admin(queue).retry(job_id) == "queued"
    delivery, _ = take(queue)
    detail = read_detail(queue, job_id)
    assert detail is not None
    runs = detail.to_dict()["runs"]
    assert [(r["attempt"], r["outcome"]) for r in runs] == [(1, "released"), (1, "failed"), (1, "running")]
    assert runs[1]["error"] == "boom" and runs[2]["ended_at"] is None
    assert json.loads(detail.attempt_entries[0])["worker"] == "w1" and F in job_id
