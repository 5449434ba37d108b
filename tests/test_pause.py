"""Pause / resume a function (SPEC §9): its jobs stay queued, submits are accepted, no worker
starts another of its jobs, running ones finish; a paused cron keeps its schedule and on resume
follows its missed_run_policy. Queue-level tests here; real worker processes further down."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading

import pytest

from tests.apps import jobs
from tests.test_queue import F, G, P, enqueue, pending, record, stream_ids
from tests.workers import ROOT, wait_for
from upnext.cron import MissedRunPolicy, Schedule, plan
from upnext.job import new_job_id
from upnext.store import keys
from upnext.store.queue import Queue
from upnext.testing import drain


# -- start.lua: the flag is checked where a job starts ----------------------------------------
def test_an_entry_fetched_just_before_the_pause_is_handed_back_unstarted(queue, redis_client):
    job_id = enqueue(queue)
    (delivery,) = queue.fetch("c1", [F], 1, None)
    redis_client.set(keys.paused(P, F), "1000.0")  # the pause lands between the fetch and the start
    assert queue.start("c1", "w1", [delivery]) == [["paused"]]
    rec = record(redis_client, job_id)
    assert (rec["status"], rec["attempts"], rec.get("deliveries", "0")) == ("queued", "0", "0")
    assert stream_ids(redis_client) == [job_id] and pending(redis_client) == []  # waiting, held by nobody
    redis_client.delete(keys.paused(P, F))
    (again,) = queue.fetch("c2", [F], 1, None)
    assert queue.start("c2", "w1", [again])[0][:2] == ["run", 1]


def test_handing_back_a_paused_job_is_no_delivery_for_the_poison_cap(queue, redis_client):
    job_id = enqueue(queue)
    redis_client.set(keys.paused(P, F), "1000.0")
    for n in range(queue.max_deliveries + 2):
        (delivery,) = queue.fetch(f"c{n}", [F], 1, None)
        assert queue.start(f"c{n}", "w1", [delivery]) == [["paused"]]
    redis_client.delete(keys.paused(P, F))
    (delivery,) = queue.fetch("last", [F], 1, None)
    assert queue.start("last", "w1", [delivery])[0][:2] == ["run", 1]
    assert record(redis_client, job_id)["deliveries"] == "1"


def test_take_reads_no_entry_of_a_paused_function(queue, redis_client):
    paused, running = enqueue(queue), enqueue(queue, function=G)
    redis_client.set(keys.paused(P, F), "1000.0")
    taken = queue.take("c1", "w1", {F: 4, G: 4})
    assert [(d.job_id, reply[0]) for d, reply in taken] == [(running, "run")]
    assert stream_ids(redis_client) == [paused] and pending(redis_client) == []


# -- the store calls: pause, resume, is_paused, paused ---------------------------------------
def test_pause_sets_the_flag_and_the_set_and_resume_clears_both(queue, redis_client):
    pauses = queue.pauses
    assert pauses.pause(F) is True and pauses.pause(F) is False  # already paused: kept as it was
    assert float(redis_client.get(keys.paused(P, F))) == pytest.approx(queue.redis_time(), abs=5)
    assert pauses.is_paused(F) and not pauses.is_paused(G)
    assert pauses.paused() == {F}
    assert pauses.resume(F) is True and pauses.resume(F) is False
    assert not pauses.is_paused(F) and pauses.paused() == set()
    assert redis_client.exists(keys.paused(P, F), keys.paused_set(P)) == 0


def test_a_cron_resumed_counts_the_instants_of_its_pause_as_missed_whatever_their_age():
    every_second = Schedule("* * * * * *")
    cursor, resumed_at, now = 100.0, 104.5, 104.6  # paused through 100..104, resumed 0.1 s ago
    assert plan(every_second, cursor, now, MissedRunPolicy.CATCH_UP, None, resumed_at) == (
        [100.0, 101.0, 102.0, 103.0, 104.0], 105.0)
    assert plan(every_second, cursor, now, MissedRunPolicy.LATEST_ONLY, None, resumed_at) == ([104.0], 105.0)
    assert plan(every_second, cursor, now, MissedRunPolicy.SKIP, None, resumed_at) == ([], 105.0)
    # An instant on time after the resume runs as usual; LATEST_ONLY counts it as the latest.
    assert plan(every_second, cursor, 105.2, MissedRunPolicy.SKIP, None, resumed_at) == ([105.0], 106.0)
    assert plan(every_second, cursor, 105.2, MissedRunPolicy.LATEST_ONLY, None, resumed_at) == ([105.0], 106.0)
    # Without a pause, recent instants are on time (the downtime rule, unchanged).
    assert plan(every_second, cursor, now, MissedRunPolicy.SKIP, None) == (
        [100.0, 101.0, 102.0, 103.0, 104.0], 105.0)


def test_cron_fire_moves_no_cursor_of_a_paused_cron_and_resume_notes_when(queue, redis_client):
    assert queue.registry.cron_fire(F, "", 1000.0, "* * * * * *", []) is True
    queue.pauses.pause(F)
    assert queue.registry.cron_fire(F, "1000.0", 1001.0, "* * * * * *", [(new_job_id(F), 1000.0)]) is False
    assert stream_ids(redis_client) == []
    assert queue.registry.cron_cursors([F]) == [("1000.0", "* * * * * *", 0.0)]
    queue.pauses.resume(F)
    (_, _, resumed_at), = queue.registry.cron_cursors([F])
    assert resumed_at == pytest.approx(queue.redis_time(), abs=5)
    assert queue.registry.cron_fire(F, "1000.0", 1001.0, "* * * * * *", [(new_job_id(F), 1000.0)]) is True
    assert not redis_client.hexists(keys.cron(P, G), "resumed_at")  # a plain task gets no cron hash
    queue.pauses.pause(G)
    queue.pauses.resume(G)
    assert not redis_client.exists(keys.cron(P, G))


# -- real worker processes ---------------------------------------------------------------------
GATE = "ledger:waits_for_gate"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def status_rows() -> dict[str, dict]:
    done = cli("status", "--json")
    assert done.returncode == 0, done.stderr
    return {f["function"]: f for f in json.loads(done.stdout)["functions"]}


def test_a_paused_function_starts_no_job_until_resumed_and_its_running_jobs_finish(start_worker, redis_client):
    worker = start_worker("tests.apps.jobs:worker", "--concurrency", "4", env={"PYTHONUNBUFFERED": "1"})
    running = jobs.waits_for_gate.submit("running")
    wait_for(lambda: redis_client.llen(GATE) == 1, message="the first job running")
    assert jobs.waits_for_gate.pause() is True and jobs.waits_for_gate.is_paused()
    waiting = jobs.waits_for_gate.submit("submitted while paused")  # accepted
    wait_for(lambda: "function_paused" in worker.output(), message="the worker to read the pause")
    redis_client.set("gate", "open")
    assert running.result(timeout=10).value == "running"  # a running job finishes during the pause
    assert jobs.add.submit(1, 2).value(timeout=10) == 3  # the worker fetches; not the paused function
    row = status_rows()["waits_for_gate"]
    assert row["paused"] is True and row["queued"] == 1 and row["note"].startswith("paused")
    assert "paused" in cli("status").stdout
    assert waiting.status() == "queued" and redis_client.llen(GATE) == 1
    assert jobs.waits_for_gate.resume() is True
    result = waiting.result(timeout=10)
    assert result.value == "submitted while paused" and result.attempts == 1
    assert status_rows()["waits_for_gate"]["paused"] is False


def ran(client, name: str) -> list[float]:
    """The instants of the runs of cron ``name`` that started, as their job records say."""
    entries = [json.loads(e) for e in client.lrange(f"ledger:{name}", 0, -1)]
    return [float(client.hget(keys.job(P, e["job_id"]), "cron_at")) for e in entries]


def test_paused_crons_keep_their_schedule_and_on_resume_follow_their_missed_run_policy(start_worker, redis_client):
    start_worker("tests.apps.pausable:worker")
    crons = ("billing", "latest", "skipped")
    wait_for(lambda: all(ran(redis_client, c) for c in crons), timeout=15, message="every cron running")
    for name in crons:
        assert cli("pause", name).returncode == 0
    cursors = {c: float(redis_client.hget(keys.cron(P, c), "next_at")) for c in crons}
    queue = Queue(redis_client, P)
    # Paused for at least three instants: none of them runs, and no cursor moves.
    wait_for(lambda: queue.redis_time() > max(cursors.values()) + 3, timeout=10, message="three paused instants")
    assert {c: float(redis_client.hget(keys.cron(P, c), "next_at")) for c in crons} == cursors
    assert all(i < cursors[c] for c in crons for i in ran(redis_client, c))
    for name in crons:
        assert cli("resume", name).returncode == 0
    resumed = {c: float(redis_client.hget(keys.cron(P, c), "resumed_at")) for c in crons}
    during = {c: [float(i) for i in range(int(cursors[c]), math.ceil(resumed[c]))] for c in crons}
    assert all(len(d) >= 3 for d in during.values())
    after = max(resumed.values()) + 2
    wait_for(lambda: all(max(ran(redis_client, c)) >= after for c in crons), timeout=15, message="runs after resume")
    billing = ran(redis_client, "billing")
    # CATCH_UP: every instant ran exactly once, those of the pause included (none silently dropped).
    assert sorted(billing) == [float(i) for i in range(int(min(billing)), int(max(billing)) + 1)]
    # LATEST_ONLY: of the paused instants at most the latest (none when an on-time instant came first).
    assert [i for i in ran(redis_client, "latest") if i in during["latest"]] in ([], during["latest"][-1:])
    # SKIP: none of them.
    assert [i for i in ran(redis_client, "skipped") if i in during["skipped"]] == []


# -- the CLI and the Python API ----------------------------------------------------------------
def test_pause_and_resume_commands_say_what_they_did_and_refuse_unknown_functions(redis_client):
    jobs.add.submit(1, 2)  # a function with jobs is known, worker or not
    first, again = cli("pause", "add", "--json"), cli("pause", "add", "--json")
    assert first.returncode == again.returncode == 0, first.stderr
    assert json.loads(first.stdout)["changed"] is True and json.loads(again.stdout)["changed"] is False
    assert json.loads(again.stdout)["paused"] is True and json.loads(again.stdout)["paused_at"] > 0
    assert "paused already, since" in cli("pause", "add").stdout
    assert json.loads(cli("resume", "add", "--json").stdout) == {"function": "add", "paused": False, "changed": True}
    assert cli("resume", "add").stdout.strip() == "add: not paused"
    assert cli("pause", "add").stdout.startswith("add: paused (")
    assert cli("resume", "add").stdout.strip() == "add: resumed"
    for command in ("pause", "resume"):
        refused = cli(command, "nosuch")
        assert refused.returncode == 1 and "unknown function 'nosuch'" in refused.stderr
    assert redis_client.exists(keys.paused(P, "nosuch"), keys.paused_set(P)) == 0


def test_worker_pause_names_an_unknown_task(redis_client):
    with pytest.raises(ValueError, match="no task named 'nosuch'"):
        jobs.worker.pause("nosuch")
    assert jobs.worker.pause("add") is True and jobs.worker.is_paused("add") and jobs.add.is_paused()
    assert jobs.worker.resume("add") is True and not jobs.add.is_paused()


def test_drain_in_an_apps_own_tests_leaves_a_paused_functions_jobs_queued(redis_client):
    paused, other = jobs.add.submit(1, 2), jobs.child.submit(1)
    jobs.add.pause()
    result: list[int] = []
    drainer = threading.Thread(target=lambda: result.append(drain(jobs.worker)), daemon=True)
    drainer.start()
    drainer.join(timeout=20)  # a deadline: a drain that kept taking the paused job back would never return
    assert result == [1] and other.status() == "complete" and paused.status() == "queued"
    jobs.add.resume()
    assert drain(jobs.worker) == 1 and paused.value(timeout=1) == 3


def test_a_burst_worker_runs_the_rest_and_exits_leaving_a_paused_functions_jobs_queued(redis_client):
    paused, other = jobs.add.submit(1, 2), jobs.child.submit(1)
    jobs.add.pause()
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "tests.apps.jobs:worker", "--burst"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)  # a worker that waited for it would time out
    assert done.returncode == 0 and "burst_done" in done.stderr, done.stderr
    assert other.status() == "complete" and paused.status() == "queued"
