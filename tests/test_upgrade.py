"""Upgrading: the data format stamp (upnext/dataformat.py), and the previous release and this one
sharing one Redis, with jobs queued, running, scheduled and retrying, in both orders (SPEC §4b).

The previous release is built once per machine (tests/upgrade/releases.py). The interop tests
assert on what jobs return and what waiters read, never on which fields a record holds, so they
keep testing what matters when the format changes.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from typing import Any

import pytest
import redis

from tests.apps.upgrade import LEDGER
from tests.upgrade.releases import CURRENT, BuildError, Release, ReleaseWorker, Waiter, previous_release, submit
from tests.workers import ROOT, stop_all, wait_for
from upnext.errors import ConfigError
from upnext.job import function_of
from upnext.store import dataformat, keys

WAIT_S = 60.0


# --- the stamp ------------------------------------------------------------------------------------

def test_the_first_worker_creates_the_stamp(redis_client):
    assert dataformat.stamp(redis_client, "upnext") == 0
    assert redis_client.get("upnext:format") == str(dataformat.FORMAT_VERSION)


def test_an_older_stamp_is_raised_to_this_release(redis_client):
    redis_client.set("upnext:format", "1")
    assert dataformat.stamp(redis_client, "upnext") == 1
    assert redis_client.get("upnext:format") == str(dataformat.FORMAT_VERSION)


def test_the_next_release_stamp_is_kept_and_this_release_still_starts(redis_client):
    """A rollback of one release: the next format is written to be readable by this one."""
    redis_client.set("upnext:format", str(dataformat.FORMAT_VERSION + 1))
    assert dataformat.stamp(redis_client, "upnext") == dataformat.FORMAT_VERSION + 1
    assert redis_client.get("upnext:format") == str(dataformat.FORMAT_VERSION + 1)


def test_a_format_this_release_cannot_read_is_refused_and_left_alone(redis_client):
    newer = dataformat.NEWEST_READABLE + 1
    redis_client.set("upnext:format", str(newer))
    with pytest.raises(ConfigError) as refused:
        dataformat.stamp(redis_client, "upnext")
    message = str(refused.value)
    assert f"format {newer}" in message and f"up to {dataformat.NEWEST_READABLE}" in message
    assert "upnext:format" in message and "upgrade" in message
    assert redis_client.get("upnext:format") == str(newer)


@pytest.mark.parametrize("junk", ["two", "1.5", "-1", ""])
def test_a_stamp_that_is_not_a_version_is_refused_and_left_alone(redis_client, junk):
    redis_client.set("upnext:format", junk)
    with pytest.raises(ConfigError, match=f"'upnext:format' holds '{junk}', not a data format version"):
        dataformat.stamp(redis_client, "upnext")
    assert redis_client.get("upnext:format") == junk


def test_the_stamp_lives_under_the_prefix(redis_client):
    dataformat.stamp(redis_client, "shop")
    assert keys.data_format("shop") == "shop:format"
    assert redis_client.get("shop:format") == str(dataformat.FORMAT_VERSION)
    assert not redis_client.exists("upnext:format")


def test_a_worker_stamps_at_start_and_refuses_a_format_it_cannot_read(redis_client):
    started = _cli("tests.apps.jobs:worker", "--burst")
    assert started.returncode == 0, started.stderr
    assert redis_client.get("upnext:format") == str(dataformat.FORMAT_VERSION)
    redis_client.delete(keys.functions("upnext"))
    redis_client.set("upnext:format", str(dataformat.NEWEST_READABLE + 1))
    refused = _cli("tests.apps.jobs:worker", "--burst")
    assert refused.returncode != 0 and "upnext:format" in refused.stderr and "upgrade" in refused.stderr
    assert not redis_client.exists(keys.functions("upnext")), "the refused worker registered anyway"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


# --- the previous release and this one on one Redis ----------------------------------------------

JOBS_APP = "tests.apps.jobs:worker"
UPGRADE_APP = "tests.apps.upgrade:worker"
# tests/apps/jobs.py as both releases have it: what each submit must end as, whoever runs it
JOBS = [({"task": "add", "args": [2, 3]}, {"status": "complete", "value": 5, "attempts": 1}),
        ({"task": "fails_until", "args": [2]}, {"status": "complete", "value": {"attempt": 2}, "attempts": 2}),
        ({"task": "fails_until", "args": [9]}, {"status": "failed", "error": "RuntimeError: attempt 4 fails",
                                                "attempts": 4}),
        ({"task": "reports"}, {"status": "complete", "value": "done", "attempts": 1}),
        ({"task": "add", "args": [1, 1], "delay": 1}, {"status": "complete", "value": 2, "attempts": 1}),
        ({"task": "parent", "args": [2]}, {"status": "complete", "attempts": 1})]


@pytest.fixture(scope="session")
def previous() -> Release:
    try:
        release = previous_release()
    except BuildError as exc:
        pytest.fail(f"cannot build the previous release to test upgrades against: {exc}", pytrace=False)
    # the upgrade app is new: the previous release's tree gets this checkout's copy
    shutil.copy(ROOT / "tests" / "apps" / "upgrade.py", release.tree / "tests" / "apps" / "upgrade.py")
    return release


@pytest.fixture
def fleet(redis_client, tmp_path):
    """Start a worker of a release: ``fleet(release, app, *args)``; all stopped at teardown."""
    started: list[ReleaseWorker] = []

    def start(release: Release, app: str, *args: str) -> ReleaseWorker:
        before = set(ReleaseWorker.worker_ids_in(redis_client))
        proc = ReleaseWorker(release, app, *args, log_path=tmp_path / f"worker{len(started)}.log",
                             env={"UPNEXT_TEST_RELEASE": _name(release)})
        started.append(proc)
        wait_for(lambda: proc.proc.poll() is not None or set(proc.worker_ids(redis_client)) - before, timeout=30,
                 message=f"a worker of {_name(release)} to register:\n{proc.output()}")
        assert proc.proc.poll() is None, f"the worker of {_name(release)} exited:\n{proc.output()}"
        return proc

    yield start
    stop_all(started)


def _name(release: Release) -> str:
    return "new" if release == CURRENT else "old"


@pytest.mark.chaos
@pytest.mark.parametrize("submitter_is_old", [True, False], ids=["old-submits-new-runs", "new-submits-old-runs"])
def test_each_release_runs_the_jobs_the_other_submitted(previous, fleet, redis_client, submitter_is_old):
    submitter, runner = (previous, CURRENT) if submitter_is_old else (CURRENT, previous)
    ids = submit(submitter, JOBS_APP, [spec for spec, _ in JOBS])
    waiters = [Waiter(release, JOBS_APP, ids, WAIT_S) for release in (previous, CURRENT)]
    fleet(runner, JOBS_APP)
    for waiter in waiters:
        outcomes = waiter.outcomes()
        for job_id, (spec, expected) in zip(ids, JOBS):
            assert {k: outcomes[job_id].get(k) for k in expected} == expected, (_name(waiter.release), spec)
        reports = outcomes[ids[3]]["logs"]
        assert [(e["level"], e["message"], e["rows"]) for e in reports] == [("info", "imported", 10)]
        parent = ids[-1]
        assert outcomes[parent]["value"][-1] == {"parent": parent, "root": parent}
        assert [(c["i"], c["parent_id"], c["root_id"]) for c in outcomes[parent]["value"][:-1]] == \
               [(0, parent, parent), (1, parent, parent)]
    attempts = [json.loads(e) for e in redis_client.lrange("ledger:fails_until", 0, -1)]
    for job_id, (_, expected) in zip(ids, JOBS):
        if job_id.startswith("fails_until"):
            assert sorted(e["attempt"] for e in attempts if e["job_id"] == job_id) == \
                   list(range(1, expected["attempts"] + 1)), "an attempt was lost or ran twice"
    _assert_nothing_left(redis_client, ids)


def _assert_nothing_left(client: redis.Redis, ids: list[str]) -> None:
    """No stream entry left undelivered, or delivered and unacknowledged, and nothing scheduled, for
    any function of these jobs (so no copy of a finished job can run again)."""
    functions = {function_of(job_id) for job_id in ids}

    def settled() -> bool:
        return all(client.zcard(keys.scheduled("upnext", f)) == 0 and not _unfinished_entries(client, f)
                   for f in functions)
    wait_for(settled, timeout=10, message=f"every stream entry of {sorted(functions)} to be acknowledged")


def _unfinished_entries(client: redis.Redis, function: str) -> bool:
    stream = keys.stream("upnext", function)
    if client.xpending(stream, keys.GROUP)["pending"]:
        return True
    newest = client.xrevrange(stream, count=1)
    group = next(g for g in client.xinfo_groups(stream) if g["name"] == keys.GROUP)
    return bool(newest) and _entry_id(newest[0][0]) > _entry_id(group["last-delivered-id"])


def _entry_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


@pytest.mark.chaos
@pytest.mark.parametrize("old_first", [True, False], ids=["old-then-new", "new-then-old"])
def test_jobs_in_flight_cross_a_rolling_deploy(previous, fleet, redis_client, old_first):
    """A worker of one release is stopped (SIGTERM) with jobs running, retrying and scheduled, and
    one of the other release starts while it drains; then jobs queued by both releases' web
    processes. Every job ends complete, once, and both releases' waiters read the same results."""
    first, second = (previous, CURRENT) if old_first else (CURRENT, previous)
    outgoing = fleet(first, UPGRADE_APP, "--graceful-timeout", "2")
    running = submit(first, UPGRADE_APP, [_naps(1.0, "finishes"),
                                          {"task": "outlasts", "args": [_name(first), "handed back"]}])
    retrying = submit(first, UPGRADE_APP, [{"task": "fails_on", "args": [_name(first), "retrying"]}])
    wait_for(lambda: _ran(redis_client, running, "start") and _ran(redis_client, retrying, "failed"), timeout=20,
             message=f"the naps to start and fails_on to fail once on {_name(first)}")
    scheduled = submit(first, UPGRADE_APP, [_add_up(1, 2, "scheduled", delay=5), _add_up(3, 4, "later", delay=6)])
    outgoing.signal(signal.SIGTERM)
    fleet(second, UPGRADE_APP)  # while the outgoing worker drains: both releases serve at once
    assert outgoing.wait() == 0, outgoing.output()
    queued = (submit(first, UPGRADE_APP, [_add_up(5, 6, "queued by the first")])
              + submit(second, UPGRADE_APP, [_add_up(7, 8, "queued by the second")]))
    ids = running + retrying + scheduled + queued
    waiters = [Waiter(release, UPGRADE_APP, ids, WAIT_S) for release in (previous, CURRENT)]
    expected = ["finishes", "handed back", {"tag": "retrying", "ran_on": _name(second)},
                {"sum": 3, "tag": "scheduled"}, {"sum": 7, "tag": "later"},
                {"sum": 11, "tag": "queued by the first"}, {"sum": 15, "tag": "queued by the second"}]
    for waiter in waiters:
        outcomes = waiter.outcomes()
        assert [(outcomes[i]["status"], outcomes[i].get("value")) for i in ids] == \
               [("complete", value) for value in expected], _name(waiter.release)
    ledger = _ledger(redis_client)
    for job_id in ids:
        ends = [e for e in ledger if e["job_id"] == job_id and e["phase"] == "end"]
        assert len(ends) == 1, f"job {job_id} ended {len(ends)} times: {ledger}"
    for job_id in scheduled + queued + running[1:]:
        assert _where(ledger, job_id, "end") == [_name(second)], f"job {job_id} did not run on the second release"
    assert _where(ledger, running[1], "start")[0] == _name(first)
    attempts = [e for e in ledger if e["job_id"] == retrying[0]]
    assert [e["attempt"] for e in attempts] == list(range(1, len(attempts) + 1)), "an attempt was lost or repeated"
    assert {e["release"] for e in attempts[:-1]} == {_name(first)} and len(attempts) >= 2
    assert waiters[0].outcomes()[retrying[0]]["attempts"] == len(attempts)
    _assert_nothing_left(redis_client, ids)


def _naps(seconds: float, tag: str) -> dict[str, Any]:
    return {"task": "naps", "args": [seconds, tag]}


def _add_up(a: int, b: int, tag: str, delay: float = 0) -> dict[str, Any]:
    return {"task": "add_up", "args": [a, b, tag], "delay": delay}


def _ledger(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(entry) for entry in client.lrange(LEDGER, 0, -1)]


def _ran(client: redis.Redis, ids: list[str], phase: str) -> bool:
    seen = {e["job_id"] for e in _ledger(client) if e["phase"] == phase}
    return all(job_id in seen for job_id in ids)


def _where(ledger: list[dict[str, Any]], job_id: str, phase: str) -> list[str]:
    return [e["release"] for e in ledger if e["job_id"] == job_id and e["phase"] == phase]
