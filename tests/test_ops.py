"""Operator subcommands on a real worker with real jobs; table output and --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.apps import jobs
from tests.workers import ROOT, wait_for


def ops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def ops_json(*args: str):
    done = ops(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_failed_lists_the_job_and_retry_runs_it_again_under_its_id(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker")
    future = jobs.needs_the_flag.submit()
    wait_for(lambda: future.status() == "failed", message="the job to fail")
    listed = ops_json("failed")
    assert [j["job_id"] for j in listed] == [future.job_id]
    assert "the flag is not set" in listed[0]["error"] and "Traceback" in listed[0]["traceback"]
    table = ops("failed").stdout
    assert future.job_id in table and "the flag is not set" in table
    redis_client.set("flag", "1")
    assert ops_json("retry", future.job_id) == {"job_id": future.job_id, "outcome": "queued"}
    assert future.value(timeout=10) == "flag seen"
    assert ops_json("failed") == []
    assert ops("retry", future.job_id).returncode == 1  # complete jobs are not retried


def test_list_call_cancel_and_purge(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker")
    functions = ops_json("list")
    assert functions["fails_until"]["retries"] == 3 and functions["add"]["kind"] == "task"
    assert "fails_until" in ops("list").stdout
    called = ops_json("call", "add", "--kwargs", '{"a": 2, "b": 5}', "--wait", "10")
    assert called["status"] == "complete" and called["value"] == 7
    bad = ops("call", "add", "--kwargs", "[1, 2]")
    assert bad.returncode != 0 and "JSON object" in bad.stderr
    unknown = ops("call", "nope", "--kwargs", "{}")
    assert unknown.returncode != 0 and "'nope'" in unknown.stderr
    delayed = [jobs.add.options(delay=3600).submit(i, i) for i in range(3)]
    assert ops_json("cancel", delayed[0].job_id)["outcome"] == "cancelled"
    assert ops_json("purge", "add") == {"function": "add", "cancelled": 2}
    assert [f.status() for f in delayed] == ["cancelled"] * 3
    missing = ops("cancel", "add:0000")
    assert missing.returncode != 0 and "add:0000" in missing.stderr


LONG_ERROR = "row 17 of orders.csv: " + "the customer column holds a value no order can have " * 3 + "(end)"


def test_call_wait_exits_by_how_the_job_ended(start_worker, redis_client):
    start_worker("tests.apps.cli_app:worker")
    done = ops("call", "import_csv", "--kwargs", '{"rows": 3}', "--wait", "10")
    assert done.returncode == 0 and "status: complete" in done.stdout, done.stderr
    failed = ops("call", "fails", "--kwargs", '{"message": "no"}', "--wait", "10")
    assert failed.returncode == 1 and "status: failed" in failed.stdout and "ValueError: no" in failed.stdout
    as_json = ops("call", "fails", "--kwargs", '{"message": "no"}', "--wait", "10", "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["status"] == "failed"


def test_call_wait_with_no_worker_prints_the_job_id_then_one_line_and_exits_4(start_worker, redis_client):
    start_worker("tests.apps.cli_app:worker").stop()  # registered, then gone
    done = ops("call", "import_csv", "--kwargs", '{"rows": 3}', "--wait", "1")
    assert done.returncode == 4, done.stderr
    job_id = done.stdout.splitlines()[0].removeprefix("job_id: ")
    assert job_id.startswith("import_csv:"), done.stdout
    assert done.stderr.count("\n") == 1 and job_id in done.stderr and "Traceback" not in done.stderr, done.stderr
    as_json = ops("call", "import_csv", "--kwargs", '{"rows": 3}', "--wait", "1", "--json")
    assert as_json.returncode == 4 and json.loads(as_json.stdout)["status"] == "queued", as_json.stdout


@pytest.mark.parametrize("kwargs, message", [
    ('{"rowz": 3}', "import_csv(): got an unexpected keyword argument 'rowz'; did you mean 'rows'?"),
    ('{"sep": ";"}', "import_csv(): missing a required argument: 'rows'"),
    ('{"rows": 1, "strict": true, "x": 0}', "import_csv(): got an unexpected keyword argument 'x'"),
])
def test_call_checks_kwargs_against_the_registered_signature(start_worker, redis_client, kwargs, message):
    start_worker("tests.apps.cli_app:worker")
    done = ops("call", "import_csv", "--kwargs", kwargs)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert redis_client.keys("upnext:job:*") == []  # nothing was submitted


def test_call_accepts_what_the_signature_takes(start_worker, redis_client):
    start_worker("tests.apps.cli_app:worker")
    assert ops_json("call", "import_csv", "--kwargs", '{"rows": 1, "strict": true}', "--wait", "10")["value"] == 1
    assert ops_json("call", "takes_anything", "--kwargs", '{"a": 1, "b": 2}', "--wait", "10")["value"] == 2
    assert ops_json("list")["import_csv"]["params"] == ["rows", "sep=", "*", "strict="]
    assert "rows, sep=, *, strict=" in ops("list").stdout


@pytest.mark.parametrize("args", [["purge", "nosuch"], ["failed", "--function", "nosuch"],
                                  ["call", "nosuch", "--kwargs", "{}"], ["pause", "nosuch"], ["resume", "nosuch"]])
def test_an_unknown_function_is_an_error_naming_it(start_worker, redis_client, args):
    start_worker("tests.apps.cli_app:worker")
    done = ops(*args)
    assert done.returncode == 1 and "'nosuch'" in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_purge_works_on_a_function_that_only_a_submitter_has_used(redis_client):
    from upnext.store.queue import Queue
    from upnext.task import build_job

    Queue(redis_client, "upnext").enqueue(build_job("not_served_yet", "[]", "{}"))
    assert ops_json("purge", "not_served_yet") == {"function": "not_served_yet", "cancelled": 1}


def test_the_failed_table_shows_the_whole_error_and_says_its_times_are_utc(start_worker, redis_client):
    start_worker("tests.apps.cli_app:worker")
    done = ops("call", "fails", "--kwargs", json.dumps({"message": LONG_ERROR}), "--wait", "10")
    assert done.returncode == 1, done.stderr
    table = ops("failed", env={"COLUMNS": "100"}).stdout
    assert "UTC" in table.splitlines()[0]
    assert " ".join(table.split()).count(f"ValueError: {LONG_ERROR}") == 1, table  # whole, wrapped
    assert max(len(line) for line in table.splitlines()) <= 100, table
