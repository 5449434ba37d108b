"""Cron options with real worker processes: arguments at declaration, overlap=False, retries and
max_concurrency, and run-time crons added and removed from Python and the CLI while workers run."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.apps import crons
from tests.workers import ROOT, wait_for
from upnext.cron import Schedule
from upnext.errors import ConfigError
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.crons import RuntimeCrons
from upnext.store.registry import CronState

P = "upnext"
APP = "tests.apps.crons:worker"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def entries(client, name: str) -> list[dict]:
    return [json.loads(e) for e in client.lrange(f"ledger:{name}", 0, -1)]


def instants(client, name: str) -> list[float]:
    """The scheduled instants of the runs that started (first attempts), as their job records say."""
    return [float(client.hget(keys.job(P, e["job_id"]), "cron_at")) for e in entries(client, name)
            if e["attempt"] == 1]


def cron_rows() -> dict[str, dict]:
    done = cli("cron", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {row["cron"]: row for row in json.loads(done.stdout)}


def test_a_cron_declared_with_args_and_kwargs_is_called_with_them(start_worker, redis_client):
    start_worker(APP)
    run = wait_for(lambda: entries(redis_client, "greets"), timeout=20, message="a greets run")[0]
    assert (run["word"], run["times"]) == ("hello", 2)


def test_overlap_false_skips_instants_while_the_previous_run_goes_on_logged_and_counted(start_worker, redis_client):
    redis_client.set("hold:slow_report", "1")
    worker = start_worker(APP, env={"PYTHONUNBUFFERED": "1"})
    first = wait_for(lambda: entries(redis_client, "slow_report"), timeout=20, message="the first slow_report run")
    cursor = keys.cron(P, "slow_report")
    wait_for(lambda: int(redis_client.hget(cursor, "skipped") or 0) >= 2, timeout=20, message="two skipped instants")
    assert len(entries(redis_client, "slow_report")) == 1  # never a second run while the first goes on
    assert "cron_instants_skipped" in worker.output() and "running_job_id" in worker.output()
    row = cron_rows()["slow_report"]
    assert row["skipped"] >= 2 and row["last_skipped_at"] and row["last_job"] == first[0]["job_id"]
    redis_client.delete("hold:slow_report")
    wait_for(lambda: len(entries(redis_client, "slow_report")) >= 2, timeout=20, message="a run after the first ended")


def test_a_cron_retries_its_failed_runs_and_has_its_max_concurrency(start_worker, redis_client):
    start_worker(APP)
    schedule = Schedule("0 0 0 1 1 *", tz="Europe/Berlin")
    now = time.time()
    last_new_year = schedule.due(now - 400 * 86400, now)[-1]
    wait_for(lambda: redis_client.hget(keys.cron(P, "flaky"), "next_at"), timeout=20, message="flaky's cursor")
    redis_client.hset(keys.cron(P, "flaky"), "next_at", repr(last_new_year))  # missed: latest_only runs it once
    wait_for(lambda: len(entries(redis_client, "flaky")) >= 3, timeout=20, message="three attempts")
    job_id = entries(redis_client, "flaky")[0]["job_id"]
    assert [e["attempt"] for e in entries(redis_client, "flaky")] == [1, 2, 3]
    assert {e["job_id"] for e in entries(redis_client, "flaky")} == {job_id}
    assert crons.worker.future(job_id).result(timeout=10).value == "third time lucky"
    options = json.loads(redis_client.hget(keys.functions(P), "flaky"))
    assert (options["retries"], options["retry_delay"], options["max_concurrency"]) == (2, 0.1, 1)


def test_a_cron_added_by_the_cli_fires_once_per_instant_on_two_workers_and_removal_stops_it(start_worker,
                                                                                            redis_client):
    start_worker(APP)
    start_worker(APP)
    added = cli("cron", "add", "nightly", "* * * * * *", "report", "--kwargs", '{"region": "eu"}', "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"] is True
    wait_for(lambda: len(instants(redis_client, "report")) >= 4, timeout=30, message="four runs of nightly")
    assert {e["region"] for e in entries(redis_client, "report")} == {"eu"}
    row = cron_rows()["nightly"]
    assert (row["source"], row["function"], row["schedule"]) == ("run-time", "report", "* * * * * *")
    listed = cli("cron", "list").stdout
    assert any(line.split()[:3] == ["nightly", "run-time", "report"] for line in listed.splitlines()), listed
    removed = cli("cron", "remove", "nightly", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout) == {"cron": "nightly", "removed": True}
    removed_at = float(redis_client.time()[0]) + 1  # an instant fired in the removal's second may still run
    ticks = len(entries(redis_client, "greets"))
    wait_for(lambda: len(entries(redis_client, "greets")) >= ticks + 3, timeout=30, message="three more cron ticks")
    runs = instants(redis_client, "report")
    assert len(runs) == len(set(runs)), "an instant ran twice"
    assert runs == [runs[0] + i for i in range(len(runs))], "an instant was lost"
    assert max(runs) <= removed_at and "nightly" not in cron_rows()
    assert not redis_client.exists(keys.cron(P, "report:nightly"))


def test_a_cron_added_from_python_outside_the_worker_fires_and_is_removed(start_worker, redis_client):
    start_worker(APP)
    assert crons.worker.add_cron("hourly_us", "* * * * * *", "report", args=("us",), kwargs={"detail": True})
    wait_for(lambda: entries(redis_client, "report"), timeout=20, message="a run of hourly_us")
    assert entries(redis_client, "report")[0]["region"] == "us" and entries(redis_client, "report")[0]["detail"]
    assert crons.worker.remove_cron("hourly_us") is True and crons.worker.remove_cron("hourly_us") is False


def test_a_run_time_cron_of_an_unknown_function_or_bad_arguments_is_refused_naming_it(redis_client, start_worker):
    with pytest.raises(ConfigError, match=r"cron 'nightly'.*no task named 'send_invoices'"):
        crons.worker.add_cron("nightly", "0 2 * * *", "send_invoices")
    with pytest.raises(TypeError, match=r"cron 'nightly'.*region"):
        crons.worker.add_cron("nightly", "0 2 * * *", "report")
    with pytest.raises(ConfigError, match=r"cron 'nightly'.*'Mars/Olympus'"):
        crons.worker.add_cron("nightly", "0 2 * * *", "report", args=("eu",), tz="Mars/Olympus")
    with pytest.raises(ConfigError, match=r"cron 'greets'.*declares a cron of that name"):
        crons.worker.add_cron("greets", "0 2 * * *", "report", args=("eu",))
    start_worker(APP)
    clash = cli("cron", "add", "greets", "0 2 * * *", "report", "--args", '["eu"]')
    assert clash.returncode == 1 and "cron 'greets': a declared cron has that name" in clash.stderr
    unknown = cli("cron", "add", "nightly", "0 2 * * *", "send_invoices")
    assert unknown.returncode == 1 and "unknown function 'send_invoices'" in unknown.stderr
    bad = cli("cron", "add", "nightly", "0 2 * * *", "report", "--kwargs", '{"regoin": "eu"}')
    assert bad.returncode == 2 and "regoin" in bad.stderr
    assert "nightly" not in cron_rows()
    missing = cli("cron", "remove", "nightly")
    assert missing.returncode == 1 and "no run-time cron named 'nightly'" in missing.stderr


# -- cron_fire.lua on its own (store level) -----------------------------------------------------
def test_a_removed_run_time_cron_is_not_brought_back_by_a_worker_that_read_it_just_before(queue, redis_client):
    store = RuntimeCrons(queue)
    definition = {"function": "report", "schedule": "* * * * * *", "tz": None, "args": '["eu"]', "kwargs": "{}",
                  "missed_run_policy": "latest_only", "max_catch_up_seconds": None, "overlap": True}
    assert store.add("nightly", definition) is True and store.add("nightly", definition) is False
    state, = queue.registry.cron_states(["report:nightly"])  # what a worker read before the removal
    assert store.remove("nightly") == definition and store.remove("nightly") is None
    assert queue.registry.fire("report:nightly", state, 1001.0, "* * * * * *", [(new_job_id("report"), 1000.0)]) is None
    assert not redis_client.exists(keys.cron(P, "report:nightly"), keys.stream(P, "report"))


def test_overlap_false_enqueues_again_once_the_previous_run_ended(queue, redis_client):
    fire = queue.registry.fire
    assert fire("f", CronState(), 1000.0, "* * * * * *", []) is not None  # seeded
    first = new_job_id("f")
    assert fire("f", CronState("1000.0"), 1001.0, "* * * * * *", [(first, 1000.0)], overlap=False).skipped == []
    state, = queue.registry.cron_states(["f"])
    assert state.last_job == first
    skipped = fire("f", state, 1003.0, "* * * * * *", [(new_job_id("f"), 1001.0), (new_job_id("f"), 1002.0)],
                   overlap=False)
    assert skipped is not None and (skipped.waited_on, skipped.skipped) == (first, [1001.0, 1002.0])
    redis_client.hset(keys.job(P, first), "status", "complete")
    state, = queue.registry.cron_states(["f"])
    assert (state.skipped, state.last_skipped_at) == (2, 1002.0)
    second, third = new_job_id("f"), new_job_id("f")
    fired = fire("f", state, 1005.0, "* * * * * *", [(second, 1003.0), (third, 1004.0)], overlap=False)
    assert fired is not None and fired.skipped == [1004.0] and fired.waited_on == second  # caught up: one runs
    assert redis_client.hget(keys.job(P, second), "status") == "queued" and not redis_client.exists(keys.job(P, third))
