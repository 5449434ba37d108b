"""`status` through the real CLI on real worker processes: fresh in-flight counts, dead workers
shown as dead, and the notes under the tables, each only when it is true."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime

from tests.apps import jobs
from tests.workers import ROOT, wait_for
from upnext.store.overview import Overview

GATE = "ledger:waits_for_gate"


def status_json() -> dict:
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "status", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def status_table() -> str:
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "status"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def notes(report: dict, kind: str) -> list[dict]:
    return [n for n in report["notes"] if n["kind"] == kind]


def worker_row(report: dict, pid: int) -> dict:
    (row,) = [w for w in report["workers"] if w["pid"] == pid]
    return row


def test_status_shows_workers_and_per_function_counts(start_worker, redis_client):
    # A short claim timeout makes heartbeats (claim_timeout / 3) frequent enough to watch.
    worker = start_worker("tests.apps.jobs:worker", "--concurrency", "3",
                          env={"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1500"})
    # Jobs that run until cancelled: 5 s jobs could end during the slow `status` calls of a loaded machine.
    sleeping = [jobs.waits_for_gate.submit(str(i)) for i in range(5)]
    later = jobs.add.options(delay=3600).submit(1, 1)
    wait_for(lambda: redis_client.llen(GATE) == 3, message="three jobs running")
    report = wait_for(lambda: (r := status_json())["workers"][0]["inflight"] == 3 and r,
                      message="a heartbeat reporting three jobs in flight")
    (me,) = report["workers"]
    assert me["pid"] == worker.pid and me["concurrency"] == 3 and me["alive"]
    rows = {f["function"]: f for f in report["functions"]}
    assert rows["waits_for_gate"]["active"] == 3 and rows["waits_for_gate"]["queued"] == 2
    assert rows["add"]["scheduled"] == 1
    table = status_table()
    assert "waits_for_gate" in table and str(worker.pid) in table
    assert later.cancel() and all(f.cancel() for f in sleeping)


def test_status_says_why_work_is_stuck_when_no_worker_runs_it(start_worker, redis_client):
    worker = start_worker("tests.apps.jobs:worker")
    worker.stop()
    jobs.add.submit(1, 2)
    report = status_json()
    (row,) = [f for f in report["functions"] if f["function"] == "add"]
    assert row["queued"] == 1 and row["note"] == "no live worker runs it"
    assert report["workers"] == [], "a worker that stopped cleanly is gone, not dead"


def test_status_shows_jobs_in_flight_within_two_seconds(start_worker, redis_client):
    # The default claim timeout: full heartbeats every 10 s, so only a fresher publish can pass.
    worker = start_worker("tests.apps.jobs:worker", "--concurrency", "5")
    gated = [jobs.waits_for_gate.submit(str(i)) for i in range(5)]
    wait_for(lambda: redis_client.llen(GATE) == 5, message="five jobs running")
    report = wait_for(lambda: (r := status_json()) and worker_row(r, worker.pid)["inflight"] == 5 and r, timeout=2.0,
                      message="status showing the five jobs in flight")
    assert worker_row(report, worker.pid)["last_fetch_at"], "the fetch that took them is reported"
    line = next(line for line in status_table().splitlines() if str(worker.pid) in line)
    assert "live" in line and "never" not in line
    assert all(f.cancel() for f in gated)


def test_a_killed_worker_is_shown_dead_with_its_entries_awaiting_reclaim(start_worker, redis_client):
    # The victim's heartbeat expires after its 10 s floor; the survivor reclaims only after 30 s.
    victim = start_worker("tests.apps.jobs:worker", "--concurrency", "3", env={"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1500"})
    held = [jobs.waits_for_gate.submit(str(i)) for i in range(2)]
    wait_for(lambda: redis_client.llen(GATE) == 2, message="the victim running two jobs")
    survivor = start_worker("tests.apps.jobs:worker", "--concurrency", "1",
                            env={"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "30000"})
    before = status_json()
    assert worker_row(before, victim.pid)["alive"] and not notes(before, "awaiting_reclaim")
    victim.signal(signal.SIGKILL)
    victim.wait()
    report = wait_for(lambda: (r := status_json()) and not worker_row(r, victim.pid)["alive"] and r, timeout=20,
                      message="the killed worker shown dead")
    dead = worker_row(report, victim.pid)
    assert dead["inflight"] is None, "a dead worker runs nothing"
    assert dead["heartbeat_at"] and dead["last_fetch_at"], "its last record is kept: when it was last seen"
    assert worker_row(report, survivor.pid)["alive"]
    (note,) = notes(report, "awaiting_reclaim")
    assert (note["function"], note["count"], note["workers"]) == ("waits_for_gate", 2, [dead["id"]])
    assert 0 < note["in_s"] <= 30
    (row,) = [f for f in report["functions"] if f["function"] == "waits_for_gate"]
    assert (row["active"], row["awaiting_reclaim"]) == (0, 2), "entries of a dead worker are not running"
    table = status_table()
    assert "dead" in next(line for line in table.splitlines() if str(victim.pid) in line)
    assert "waits_for_gate: 2 awaiting reclaim in ~" in table
    # The dead worker's free slot is no capacity: one job on the survivor and one queued fill every live slot.
    more = [jobs.waits_for_gate.submit(f"more{i}") for i in range(2)]
    wait_for(lambda: redis_client.llen(GATE) == 3, message="the survivor running one job")
    busy = wait_for(lambda: notes(status_json(), "all_slots_busy"), timeout=5, message="all live slots busy")
    assert busy[0]["workers"] == 1 and busy[0]["queued"] == 1
    assert all(f.cancel() for f in held + more)


def test_all_slots_busy_is_noted_only_while_jobs_wait_for_a_slot(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker", "--concurrency", "2")
    gated = [jobs.waits_for_gate.submit(str(i)) for i in range(2)]
    wait_for(lambda: redis_client.llen(GATE) == 2, message="both slots taken")
    report = wait_for(lambda: (r := status_json())["workers"][0]["inflight"] == 2 and r, timeout=5,
                      message="both jobs reported in flight")
    assert not notes(report, "all_slots_busy"), "nothing waits: no note"
    gated.append(jobs.waits_for_gate.submit("waiting"))
    (note,) = wait_for(lambda: notes(status_json(), "all_slots_busy"), timeout=5, message="the note")
    assert (note["workers"], note["slots"], note["queued"]) == (1, 2, 1)
    assert "1 worker, all slots busy" in status_table()
    assert all(f.cancel() for f in gated)


def test_delayed_jobs_are_noted_with_the_next_run_per_function(start_worker, redis_client):
    start_worker("tests.apps.jobs:worker", "--concurrency", "2")
    assert not notes(status_json(), "delayed")
    later = jobs.add.options(delay=3600).submit(1, 1)
    sooner = jobs.add.options(delay=600).submit(2, 2)
    report = status_json()
    (note,) = notes(report, "delayed")
    assert (note["function"], note["count"]) == ("add", 2)
    assert note["next_at"] == redis_client.zscore("upnext:{add}:scheduled", sooner.job_id)
    clock = datetime.fromtimestamp(note["next_at"], tz=UTC).strftime("%H:%M:%S")
    assert f"add: 2 delayed, next at {clock} UTC" in status_table()
    assert later.cancel() and sooner.cancel()
    assert not notes(status_json(), "delayed"), "cancelled jobs leave the schedule: no note"


def test_a_status_read_costs_the_same_for_one_job_as_for_a_hundred(queue, redis_client):
    options = json.dumps({"kind": "task"})
    queue.registry.register("w1", json.dumps({"id": "w1", "concurrency": 2, "active": 2, "functions": ["add"]}), 60,
                            {"add": options, "child": options})

    def load(n: int) -> None:
        queue.enqueue_many([jobs.add.new_job((1, 2), {}) for _ in range(n)])
        queue.take("ghost", "ghost", {"add": n})  # held by a consumer that is no live worker
        queue.enqueue_many([jobs.add.new_job((1, 2), {}) for _ in range(n)])
        queue.enqueue_many([jobs.add.new_job((1, 2), {}, delay_s=3600) for _ in range(n)])

    def cost() -> tuple[int, dict]:
        before = redis_client.info("stats")["total_commands_processed"]
        report = Overview(queue).read()
        return redis_client.info("stats")["total_commands_processed"] - before, report

    load(1)
    few, report = cost()
    assert [n["kind"] for n in report["notes"]] == ["all_slots_busy", "delayed", "awaiting_reclaim"]
    load(99)
    many, report = cost()
    (add,) = [f for f in report["functions"] if f["function"] == "add"]
    assert (add["queued"], add["awaiting_reclaim"], add["scheduled"]) == (100, 100, 100)
    assert many == few, "the commands of a status read grow with the jobs"
