"""Cluster-wide limits across real worker processes: max_concurrency leases and rate limits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

import upnext
from tests.apps import limited
from tests.workers import wait_for
from upnext.store import keys
from upnext.store.limits import RateLimit


def test_max_concurrency_holds_across_two_worker_processes(start_worker, redis_client):
    for _ in range(2):
        start_worker("tests.apps.limited:worker", "--concurrency", "20")
    futures = upnext.submit_many(limited.capped, [{"i": i} for i in range(40)])
    assert upnext.gather(*futures, timeout=60) == list(range(40))
    assert int(redis_client.get("max:capped")) == 2  # reached, never exceeded
    assert all(f.result(timeout=1).attempts == 1 for f in futures)  # held back, never started twice
    assert redis_client.zcard(keys.leases("upnext", "capped")) == 0


def test_a_killed_workers_lease_comes_back(start_worker, redis_client):
    env = {"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1000"}
    first = start_worker("tests.apps.limited:worker", env=env)
    stuck = limited.hog.submit(30)
    wait_for(lambda: redis_client.llen("starts:hog") == 1, message="the hog holding the only lease")
    first.signal(signal.SIGKILL)
    first.wait()
    start_worker("tests.apps.limited:worker", env=env)
    # The lease expires and the reclaimed job runs again elsewhere; a new job then gets the lease.
    wait_for(lambda: redis_client.llen("starts:hog") == 2, timeout=20, message="the hog restarted")
    assert stuck.cancel() is True
    assert limited.hog.submit(0).value(timeout=20) != first.pid


def test_rate_limit_holds_across_two_worker_processes(start_worker, redis_client):
    for _ in range(2):
        start_worker("tests.apps.limited:worker", "--concurrency", "20")
    futures = upnext.submit_many(limited.limited, [{"i": i} for i in range(20)])
    starts = sorted(upnext.gather(*futures, timeout=60))
    assert all(f.result(timeout=1).attempts == 1 for f in futures)
    first = starts[0]
    for window_start in starts:
        in_window = [s for s in starts if window_start <= s < window_start + 1.0]
        assert len(in_window) <= 5 + 5, in_window  # the rate plus the initial burst
    # 20 jobs at 5/s with a burst of 5: about 3 s, never much less.
    assert starts[-1] - first >= 2.5


@pytest.mark.parametrize("text, count, period_s", [
    ("10/s", 10, 1), ("10/second", 10, 1), ("10/m", 10, 60), ("10/min", 10, 60), ("10/minute", 10, 60),
    ("5/10s", 5, 10), ("100/h", 100, 3600), ("1000/d", 1000, 86400)])
def test_every_rate_form_parses(text, count, period_s):
    assert RateLimit.parse(text) == RateLimit(count, period_s)


def test_a_bad_rate_or_cap_fails_at_decoration_quoting_it():
    w = upnext.Worker("bad-limits")
    with pytest.raises(ValueError, match="'10/fortnight'.*'10/minute'"):
        w.task(rate_limit="10/fortnight")(lambda: None)
    with pytest.raises(ValueError, match="max_concurrency"):
        w.task(max_concurrency=0)(lambda: None)


def test_a_routing_group_cap_holds_across_its_functions_and_two_worker_processes(start_worker, redis_client):
    for _ in range(2):
        start_worker("tests.apps.limited:worker", "--concurrency", "10")
    futures = [*upnext.submit_many(limited.summarize, [{"i": i} for i in range(16)]),
               *upnext.submit_many(limited.translate, [{"i": i} for i in range(8)])]
    futures += [f for i in range(6) for f in limited.prompted.send(i=i)]
    assert upnext.gather(*futures, timeout=60) == [*range(16), *range(8), *range(6)]
    assert int(redis_client.get("{track:llm}:max")) == 2  # reached, never exceeded
    assert int(redis_client.get("{track:translate}:max")) == 1  # its own max_concurrency still holds
    assert all(f.result(timeout=1).attempts == 1 for f in futures)
    wait_for(lambda: redis_client.zcard(keys.group_leases("upnext", "llm")) == 0, message="every group lease back")


def test_a_killed_workers_group_lease_lapses(start_worker, redis_client):
    env = {"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1000"}
    first = start_worker("tests.apps.limited:worker", env=env)
    limited.slow_hog.submit(60)
    wait_for(lambda: redis_client.llen("starts:slow_hog") == 1, message="the hog holding the group's only lease")
    first.signal(signal.SIGKILL)
    first.wait()
    ((held, expires_ms),) = redis_client.zrange(keys.group_leases("upnext", "slow"), 0, -1, withscores=True)
    assert held.startswith("slow_hog:")
    # This worker serves only slow_other: nothing reclaims the hog's entry, only expiry frees the lease.
    start_worker("tests.apps.limited:other_worker", env=env)
    other = limited.slow_other.submit().result(timeout=20)
    assert other.value != first.pid and other.started_at.timestamp() >= expires_ms / 1000
    assert redis_client.llen("starts:slow_hog") == 1
    assert all(not m.startswith("slow_hog:") for m in redis_client.zrange(keys.group_leases("upnext", "slow"), 0, -1))


def test_a_group_cap_is_one_value_and_needs_a_group():
    w = upnext.Worker("bad-groups")
    w.task(routing_group="llm", group_max_concurrency=4)(lambda: None)
    with pytest.raises(upnext.ConfigError, match="routing_group 'llm'.*'two'.*5.*'<lambda>'.*4"):
        w.task(name="two", routing_group="llm", group_max_concurrency=5)(lambda: None)
    with pytest.raises(upnext.ConfigError, match="routing_group 'llm'.*'handler'.*None"):
        w.event("e").on(name="handler", routing_group="llm")(lambda: None)
    with pytest.raises(ValueError, match="group_max_concurrency needs a routing_group"):
        w.task(name="three", group_max_concurrency=2)(lambda: None)
    with pytest.raises(ValueError, match="group_max_concurrency must be an integer >= 1"):
        w.task(name="four", routing_group="x", group_max_concurrency=0)(lambda: None)
    with pytest.raises(ValueError, match="routing_group 'a b'"):
        w.task(name="five", routing_group="a b", group_max_concurrency=1)(lambda: None)


def test_a_long_job_keeps_its_group_lease_past_the_claim_timeout(start_worker, redis_client):
    env = {"UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "1000"}  # leases lapse after 1 s unless the keeper refreshes them
    start_worker("tests.apps.limited:worker", env=env)
    hog = limited.slow_hog.submit(3)
    wait_for(lambda: redis_client.llen("starts:slow_hog") == 1, message="the hog holding the group's only lease")
    start_worker("tests.apps.limited:other_worker", env=env)
    other = limited.slow_other.submit().result(timeout=20)
    assert other.started_at >= hog.result(timeout=20).completed_at


def test_group_lease_script_takes_refuses_refreshes_and_gives_back(queue, redis_client):
    from upnext.store import groups
    from upnext.store.limits import Limits
    from upnext.store.records import Delivery

    limits = {"a": Limits.of(None, None, "g", 2), "b": Limits.of(None, None, "g", 2)}
    runs = [Delivery("a", f"1-{i}", f"a:{i:02x}") for i in range(2)] + [Delivery("b", "1-9", "b:09")]
    zset = keys.group_leases("upnext", "g")
    assert groups.take_for(queue, runs, limits, 30000) == {runs[2]}  # a third run is over the group's cap
    assert groups.free(queue, limits) == {"g": 0}
    assert groups.take_for(queue, runs[:1], limits, 30000) == set()  # a held lease is kept (a reclaim)
    before = redis_client.zscore(zset, groups.member(runs[1]))
    groups.refresh(queue, runs, limits, 60000)  # extends held leases only: b:09 gets none
    assert redis_client.zscore(zset, groups.member(runs[1])) > before
    assert redis_client.zscore(zset, groups.member(runs[2])) is None
    groups.give_back(queue, runs[:1], limits)
    assert groups.free(queue, limits) == {"g": 1}
    redis_client.zadd(zset, {groups.member(runs[1]): 1})  # lapsed long ago: a dead worker's lease
    assert groups.free(queue, limits) == {"g": 2}
    reserved = groups.reserve(queue, {"a": 3, "b": 1}, limits, 30000)
    assert [len(reserved["a"]), len(reserved["b"])] == [2, 0]
    groups.swap(queue, reserved, limits, [(runs[0], ["run"]), (runs[1], ["busy"])], 30000)
    assert redis_client.zrange(zset, 0, -1) == [groups.member(runs[0])]


def test_status_shows_a_routing_group_its_cap_and_its_holders(start_worker, redis_client):
    start_worker("tests.apps.limited:worker")
    hog = limited.slow_hog.submit(60)
    wait_for(lambda: redis_client.llen("starts:slow_hog") == 1, message="the hog holding the group's only lease")
    waiting = limited.slow_hog.submit(0)  # queued behind the group's cap
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "status", "--json"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["slow"] == {"group": "slow", "max_concurrency": 1, "holders": 1, "functions": ["slow_hog"]}
    assert groups["llm"]["max_concurrency"] == 2 and groups["llm"]["holders"] == 0
    assert sorted(groups["llm"]["functions"]) == ["on_prompted", "summarize", "translate"]
    (row,) = [f for f in report["functions"] if f["function"] == "slow_hog"]
    assert row["routing_group"] == "slow" and "waiting for a lease of group slow (1/1)" in row["note"]
    assert hog.cancel() is True
    assert waiting.value(timeout=20) > 0


def test_a_job_handed_back_at_a_graceful_stop_gives_its_group_lease_back(start_worker, redis_client):
    worker = start_worker("tests.apps.limited:worker", "--graceful-timeout", "0.3")  # leases would last 30 s
    limited.slow_hog.submit(60)
    wait_for(lambda: redis_client.llen("starts:slow_hog") == 1, message="the hog holding the group's only lease")
    assert redis_client.zcard(keys.group_leases("upnext", "slow")) == 1
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert redis_client.zcard(keys.group_leases("upnext", "slow")) == 0
