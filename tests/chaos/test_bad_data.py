"""Chaos scenarios of bad data: bytes that are not UTF-8 in a stream, results and errors that
cannot be encoded, a rate-limited poison job, and stream trimming under a burst. Whatever the
data, every worker keeps serving and every normal job runs exactly once."""

from __future__ import annotations

import pytest
import redis

import upnext
from tests.chaos import app
from tests.chaos.conftest import duplicates, wait_until
from tests.chaos.test_chaos import report
from tests.workers import wait_for
from upnext.store import keys

pytestmark = pytest.mark.chaos
STREAM = keys.stream("upnext", "work")


def test_bytes_that_are_not_utf8_in_a_stream_are_dropped_and_every_worker_keeps_serving(fleet, ledger, redis_url):
    raw = redis.Redis.from_url(redis_url)
    raw.xgroup_create(STREAM, keys.GROUP, id="0", mkstream=True)
    raw.xadd(STREAM, {b"x": b"\xff\xfe"})                 # the recipe
    raw.xadd(STREAM, {b"\xc3\x28": b"1"})                  # a field name that is not UTF-8
    raw.xadd(STREAM, {b"id": b"work:\xff\xfe00"})          # a job id that is not UTF-8
    f = fleet()
    first = f.start()
    wait_for(lambda: first.worker_ids(ledger), message="the first worker up")
    futures = upnext.submit_many(app.work, [{"ms": 1}] * 50)
    raw.xadd(STREAM, {b"id": b"\xff" * 40})                # more garbage while it serves
    second = f.start()                                      # a worker started after the garbage
    upnext.gather(*futures, timeout=30)
    wait_for(lambda: ledger.xlen(STREAM) == 0, message="the garbage acked away")
    assert all(w.proc.poll() is None for w in (first, second))
    assert "loop_died" not in first.output() + second.output()
    dropped = (first.output() + second.output()).count("entry_dropped")
    report("non_utf8_entries", garbage_entries=4, jobs=50, lost=0, dropped_logged=dropped, workers_alive=2)
    assert dropped == 4 and duplicates(ledger) == 0


def test_surrogate_results_and_errors_fail_alone_in_a_burst_of_normal_jobs(fleet, ledger):
    f = fleet()
    worker = f.start("--concurrency", "50")
    wait_for(lambda: worker.worker_ids(ledger), message="the worker up")
    normal = upnext.submit_many(app.work, [{"ms": 1}] * 500)
    bad_results = [app.returns_surrogate.submit() for _ in range(5)]
    bad_errors = [app.raises_surrogate.submit() for _ in range(5)]
    more = upnext.submit_many(app.work, [{"ms": 1}] * 100)
    upnext.gather(*normal, *more, timeout=60)
    for fut in bad_results:
        with pytest.raises(upnext.TaskExecutionError, match="not valid UTF-8"):
            fut.result(timeout=30)
        assert int(ledger.hget("exec", fut.job_id)) == 1  # not retried: it cannot succeed
    for fut in bad_errors:
        with pytest.raises(upnext.TaskExecutionError, match=r"cannot parse caf\\udce9.csv"):
            fut.result(timeout=30)
    dups = duplicates(ledger) - sum(int(ledger.hget("exec", fut.job_id)) - 1 for fut in bad_errors)
    report("surrogate_results", normal_jobs=600, bad_jobs=10, lost=0, duplicates=dups)
    assert dups == 0 and worker.proc.poll() is None and "loop_died" not in worker.output()


def test_a_rate_limited_job_that_kills_its_worker_is_failed_after_max_deliveries(fleet, ledger):
    f = fleet(UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="300", UPNEXT_MAX_DELIVERIES="3")
    future = app.exits_rate_limited.submit()

    def replace_the_dead():  # as a supervisor or an orchestrator would
        if not f.alive():
            f.start()

    wait_until(lambda: future.status() == "failed", timeout=90, message="the poison job to be failed",
               tick=replace_the_dead, every_s=0.2, first_s=0)
    with pytest.raises(upnext.TaskExecutionError, match="max_deliveries=3"):
        future.result(timeout=5)
    exits = int(ledger.get("exits"))
    report("rate_limited_poison", max_deliveries=3, runs=exits, final_status=future.status())
    assert exits == 3 and future.status() == "failed"


def test_stream_maxlen_under_a_burst_loses_nothing(fleet, ledger):
    f = fleet(UPNEXT_QUEUE_STREAM_MAXLEN="50", UPNEXT_QUEUE_CLAIM_TIMEOUT_MS="1000")
    for _ in range(2):
        f.start("--concurrency", "20")
    futures = upnext.submit_many(app.work, [{"ms": 2}] * 2000)
    wait_until(lambda: ledger.scard("effects") == 2000, timeout=90, message="every job to run")
    results = upnext.gather(*futures, timeout=60)
    dups = duplicates(ledger)
    report("stream_maxlen_50", jobs=2000, lost=2000 - len(results), duplicates=dups)
    assert len(results) == 2000 and dups == 0
