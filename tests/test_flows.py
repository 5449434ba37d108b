"""Crons, events, workflows and cancellation end to end, with real worker processes."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

import upnext
from tests.apps import flows
from tests.workers import wait_for
from upnext.cron import MISSED_AFTER_S, MissedRunPolicy, Schedule, plan
from upnext.store import keys


def ledger(client, name):
    return [json.loads(x) for x in client.lrange(f"ledger:{name}", 0, -1)]


def instants(client):
    return [float(client.hget(keys.job("upnext", r["job_id"]), "cron_at")) for r in ledger(client, "every_second")]


def test_an_every_second_cron_runs_once_per_second_under_two_workers(start_worker, redis_client):
    start_worker("tests.apps.flows:worker")
    start_worker("tests.apps.flows:worker")
    wait_for(lambda: len(ledger(redis_client, "every_second")) >= 5, timeout=20, message="five cron runs")
    seen = instants(redis_client)
    assert all(n == 1 for n in Counter(seen).values()), seen
    ordered = sorted(seen)
    assert all(b - a == 1.0 for a, b in zip(ordered, ordered[1:])), ordered
    pids = {json.loads(redis_client.get(keys.worker("upnext", w)))["pid"]
            for w in redis_client.smembers(keys.worker_ids("upnext"))}
    assert len(pids) == 2


def test_a_deleted_cron_cursor_is_recreated_and_the_cron_goes_on(start_worker, redis_client):
    start_worker("tests.apps.flows:worker")
    wait_for(lambda: ledger(redis_client, "every_second"), timeout=10, message="a first run")
    redis_client.delete(keys.cron("upnext", "every_second"))
    before = len(ledger(redis_client, "every_second"))
    wait_for(lambda: redis_client.hget(keys.cron("upnext", "every_second"), "next_at"), message="cursor back")
    wait_for(lambda: len(ledger(redis_client, "every_second")) >= before + 2, timeout=10, message="more runs")


def test_a_cron_back_from_an_outage_does_not_replay_it(start_worker, redis_client):
    restarted_at = time.time()
    outage_start = float(int(restarted_at) - 100)
    redis_client.hset(keys.cron("upnext", "every_second"), mapping={"next_at": repr(outage_start),
                                                                     "schedule": "* * * * * *"})
    start_worker("tests.apps.flows:worker")
    wait_for(lambda: len(ledger(redis_client, "every_second")) >= 3, timeout=10, message="runs after the outage")
    during_outage = [i for i in instants(redis_client) if i < restarted_at]
    # LATEST_ONLY: instants under MISSED_AFTER_S late still run; the older 95 are not replayed.
    assert 1 <= len(during_outage) <= MISSED_AFTER_S + 1, during_outage


def test_policy_arithmetic_on_a_simulated_outage():
    every_second = Schedule("* * * * * *")
    now = 1000.0
    recent = [996.0, 997.0, 998.0, 999.0, 1000.0]  # under MISSED_AFTER_S late: due, not missed
    assert plan(every_second, 900.0, now, MissedRunPolicy.SKIP, None) == (recent, 1001.0)
    runs, cursor = plan(every_second, 900.0, now, MissedRunPolicy.CATCH_UP, 30)
    assert runs == [float(i) for i in range(970, 1001)] and cursor == 1001.0
    assert plan(every_second, 900.0, now, MissedRunPolicy.LATEST_ONLY, None)[0] == recent
    hourly = Schedule("0 * * * *")
    assert plan(hourly, 3600.0, 3 * 3600 + 10, MissedRunPolicy.LATEST_ONLY, None) == ([3 * 3600.0], 4 * 3600.0)
    assert plan(hourly, 3600.0, 3 * 3600 + 10, MissedRunPolicy.SKIP, None) == ([], 4 * 3600.0)
    assert plan(hourly, 3600.0, 3 * 3600 + 10, MissedRunPolicy.CATCH_UP, None)[0] == [3600.0, 7200.0, 10800.0]


def test_weekly_and_monthly_schedules_and_bad_expressions():
    assert Schedule("0 9 * * 1").next_after(0.0) == 4 * 86400 + 9 * 3600  # 1970-01-05 was a Monday
    assert Schedule("0 0 1 * *").next_after(0.0) == 31 * 86400
    with pytest.raises(ValueError, match="'every monday'"):
        Schedule("every monday")


def test_event_fans_out_from_a_process_that_imported_no_handler(start_worker, redis_client):
    start_worker("tests.apps.flows:worker")
    sender = upnext.Worker("web").event("order.placed")
    futures = sender.send(order_id="o-1")
    outcomes = {}
    for future in futures:
        try:
            outcomes[future.job_id.split(":")[0]] = future.value(timeout=20)
        except upnext.TaskExecutionError as exc:
            outcomes[future.job_id.split(":")[0]] = exc.error
    assert outcomes["send_confirmation"] == "confirmed o-1"
    assert "card declined for o-1" in outcomes["charge_card"]
    assert len(ledger(redis_client, "charge_card")) == 2  # its own retry, not the other handler's
    assert len(ledger(redis_client, "send_confirmation")) == 1


def test_event_idempotent_send_and_typed_handle(start_worker, redis_client):
    start_worker("tests.apps.flows:worker")
    first = flows.order_placed.send_idempotent("o-2", order_id="o-2")
    again = flows.order_placed.send_idempotent("o-2", order_id="o-2")
    assert [f.job_id for f in again] == [f.job_id for f in first]
    typed = flows.send_confirmation.send(order_id="o-3")  # a handler's handle fans out to the whole event
    assert sorted(f.job_id.split(":")[0] for f in typed) == ["charge_card", "send_confirmation"]


def test_gather_keeps_order_and_can_return_exceptions(start_worker):
    start_worker("tests.apps.flows:worker", "--concurrency", "10")
    futures = [flows.nap.submit(0.3, "slow"), flows.nap.submit(0.0, "fast"), flows.fail.submit("no")]
    values = upnext.gather(*futures, return_exceptions=True)
    assert values[:2] == ["slow", "fast"] and isinstance(values[2], upnext.TaskExecutionError)
    assert values[2].job_id == futures[2].job_id and "ValueError: no" in values[2].error
    with pytest.raises(upnext.TaskExecutionError):
        upnext.gather(*futures)


def test_map_tasks_never_exceeds_its_concurrency(start_worker, redis_client):
    start_worker("tests.apps.flows:worker", "--concurrency", "20")
    assert flows.fan_out.submit(12).value(timeout=30) == [i * i for i in range(12)]
    assert int(redis_client.get("max:square")) <= 3


def test_first_completed_returns_the_winner_and_cancels_the_rest(start_worker):
    start_worker("tests.apps.flows:worker", "--concurrency", "10")
    slow, fast = flows.nap.submit(5, "slow"), flows.nap.submit(0.05, "fast")
    assert upnext.first_completed(slow, fast, timeout=10) == "fast"
    wait_for(lambda: slow.status() == "cancelled", message="the loser cancelled")


def test_submit_many_validates_then_enqueues_in_one_go(start_worker, redis_client):
    with pytest.raises(TypeError, match="square"):
        upnext.submit_many(flows.square, [{"x": 1}, {"y": 2}])
    assert redis_client.dbsize() == 0
    start_worker("tests.apps.flows:worker", "--concurrency", "20")
    futures = upnext.submit_many(flows.square, [{"x": i} for i in range(50)])
    assert upnext.gather(*futures, timeout=30) == [i * i for i in range(50)]


def test_deep_nesting_on_two_slots_completes_with_lineage_at_every_level(start_worker, redis_client):
    start_worker("tests.apps.flows:worker", "--concurrency", "2")
    root = flows.tree.submit(2, 3)
    result = root.value(timeout=60)
    assert len(result["children"]) == 3 and all(len(c["children"]) == 3 for c in result["children"])
    runs = ledger(redis_client, "tree")
    assert len(runs) == 1 + 3 + 9
    assert all(r["root_id"] == root.job_id for r in runs)
    by_id = {r["job_id"]: r for r in runs}
    for r in runs:
        if r["job_id"] != root.job_id:
            assert by_id[r["parent_id"]]["depth"] == r["depth"] + 1


def test_event_jobs_sent_from_a_job_carry_its_lineage(start_worker, redis_client):
    start_worker("tests.apps.flows:worker")
    parent = flows.announce.submit("o-4")
    handler_ids = parent.value(timeout=20)
    wait_for(lambda: ledger(redis_client, "send_confirmation"), message="the handler ran")
    (run,) = ledger(redis_client, "send_confirmation")
    assert run["job_id"] in handler_ids
    assert run["parent_id"] == parent.job_id and run["root_id"] == parent.job_id
