"""Operator subcommands on a real worker with real jobs; table output and --json."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.apps import jobs
from tests.workers import ROOT, wait_for


def ops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


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
