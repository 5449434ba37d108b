"""Retry policy (SPEC §2c): retry_on / no_retry_on, upnext.Permanent, ``retryable = False``,
upnext.Retry(after=...), full jitter and retry_max_delay. Real Redis, real worker processes
(greenlet and process executors); jitter is checked with a seeded random source."""

from __future__ import annotations

import random
import time

import pytest

import upnext
from tests.apps import retrying as app
from tests.workers import wait_for
from upnext.store import keys
from upnext.task import TaskDef

APP = "tests.apps.retrying:worker"
CHILD_ENV = {"UPNEXT_PROCESS_POOL_SIZE": "1"}


def outcome(future: upnext.Future, timeout: float = 30) -> tuple[str, int, str]:
    """(status, attempts, error) of a job that ends, failed or not."""
    try:
        result = future.result(timeout=timeout)
    except upnext.TaskExecutionError as failed:
        result = failed.task_result
    return result.status, result.attempts, result.error or ""


def scheduled_in(redis_client, function: str, job_id: str) -> float:
    """Seconds from now until the job's retry is due, once the worker has scheduled it."""
    score = wait_for(lambda: redis_client.zscore(keys.scheduled("upnext", function), job_id), timeout=30,
                     message=f"job {job_id} scheduled for a retry")
    return float(score) - time.time()


@pytest.mark.parametrize("task", [app.only_network, app.only_network_in_child])
def test_retry_on_retries_only_its_classes_and_their_subclasses(start_worker, task):
    start_worker(APP, env=CHILD_ENV)
    timeout, reset, value = (task.submit(kind) for kind in ("timeout", "reset", "value"))
    assert outcome(timeout)[:2] == ("failed", 3)
    assert outcome(reset)[:2] == ("failed", 3)  # ConnectionResetError is a ConnectionError
    assert outcome(value) == ("failed", 1, "ValueError: bad input")


def test_no_retry_on_fails_at_once_and_other_exceptions_are_retried(start_worker):
    start_worker(APP)
    value, unicode, runtime = (app.never_value.submit(kind) for kind in ("value", "unicode", "runtime"))
    assert outcome(value) == ("failed", 1, "ValueError: bad input")
    assert outcome(unicode)[:2] == ("failed", 1)  # a subclass of ValueError
    assert outcome(runtime)[:2] == ("failed", 3)


@pytest.mark.parametrize("task", [app.raises, app.raises_in_child])
def test_permanent_and_retryable_false_fail_at_once_storing_the_real_error(start_worker, task):
    start_worker(APP, env=CHILD_ENV)
    permanent, marked, flaky = task.submit("permanent"), task.submit("marked"), task.submit("until3")
    assert outcome(permanent) == ("failed", 1, "KeyError: 'gone'")
    assert outcome(marked) == ("failed", 1, "GoneForGood: account closed")
    assert outcome(flaky)[:2] == ("complete", 3)  # the same task still retries other exceptions


@pytest.mark.parametrize("task", [app.raises, app.raises_in_child])
def test_retry_after_schedules_the_job_at_that_delay_and_counts_an_attempt(start_worker, redis_client, task):
    start_worker(APP, env=CHILD_ENV)
    future = task.submit("after3600")  # the backoff (retry_delay=0) would retry it at once
    assert scheduled_in(redis_client, task.name, future.job_id) == pytest.approx(3600, abs=30)
    record = redis_client.hgetall(keys.job("upnext", future.job_id))
    assert (record["status"], record["attempts"]) == ("retrying", "1")


@pytest.mark.parametrize("task", [app.asks_retry_without_retries, app.asks_retry_without_retries_in_child])
def test_retry_on_the_last_attempt_fails_saying_so(start_worker, task):
    start_worker(APP, env=CHILD_ENV)
    future = task.submit()
    status, attempts, error = outcome(future)
    assert (status, attempts) == ("failed", 1)
    assert f"job {future.job_id} ({task.name}) raised upnext.Retry on its last attempt" in error
    assert "retries=0" in error


def test_retries_are_jittered_by_default_and_capped_by_retry_max_delay(start_worker, redis_client):
    start_worker(APP)
    jittered = [app.jittered.submit() for _ in range(5)]
    delays = [scheduled_in(redis_client, "jittered", f.job_id) for f in jittered]
    assert all(-5 <= d <= 1000 for d in delays) and len({round(d) for d in delays}) > 1
    capped = app.capped.submit()
    assert scheduled_in(redis_client, "capped", capped.job_id) == pytest.approx(500, abs=30)


def test_full_jitter_draws_between_zero_and_the_capped_backoff():
    definition = TaskDef("t", lambda: None, retries=5, retry_delay=1.0, retry_backoff=10.0, retry_max_delay=500)
    drawn = [definition.retry_delay_s(n, random.Random(17).uniform) for n in (1, 2, 3, 4)]
    assert drawn == [random.Random(17).uniform(0, cap) for cap in (1.0, 10.0, 100.0, 500.0)]
    exact = TaskDef("t", lambda: None, retry_delay=1.0, retry_backoff=10.0, retry_max_delay=500, retry_jitter=False)
    assert [exact.retry_delay_s(n) for n in (1, 2, 3, 4)] == [1.0, 10.0, 100.0, 500.0]


@pytest.mark.parametrize("options, error, match", [
    ({"retry_on": TimeoutError}, TypeError, "task 't': retry_on must be a tuple of exception classes"),
    ({"retry_on": (TimeoutError, "x")}, TypeError, "task 't': retry_on must be a tuple"),
    ({"no_retry_on": [ValueError]}, TypeError, "task 't': no_retry_on must be a tuple"),
    ({"retry_on": (ConnectionError,), "no_retry_on": (OSError,)}, upnext.ConfigError,
     "task 't': retry_on names ConnectionError, which no_retry_on excludes through OSError"),
    ({"retry_jitter": "yes"}, ValueError, "task 't': retry_jitter must be True or False"),
    ({"retry_max_delay": -1}, ValueError, "task 't': retry_max_delay must be a number >= 0"),
])
def test_bad_retry_options_fail_at_decoration_naming_task_and_option(options, error, match):
    with pytest.raises(error, match=match):
        TaskDef("t", lambda: None, **options)


def test_the_registry_shows_the_retry_policy():
    options = app.only_network.definition.options_dict()
    assert options["retry_on"] == ["builtins.TimeoutError", "builtins.ConnectionError"]
    assert (options["no_retry_on"], options["retry_jitter"], options["retry_max_delay"]) == ([], True, None)
    assert app.capped.definition.options_dict()["retry_max_delay"] == 500


def test_no_retry_on_may_carve_a_subclass_out_of_retry_on():
    definition = TaskDef("t", lambda: None, retry_on=(OSError,), no_retry_on=(FileNotFoundError,))
    assert definition.judge(ConnectionError())[1] and not definition.judge(FileNotFoundError())[1]


@pytest.mark.parametrize("value", [-1, "30", True])
def test_retry_after_must_be_seconds(value):
    with pytest.raises(ValueError, match="Retry\\(after=...\\) must be a number of seconds"):
        upnext.Retry(after=value)


def test_permanent_wraps_an_exception_instance():
    with pytest.raises(TypeError, match="Permanent\\(\\) wraps an exception instance"):
        upnext.Permanent("gone")
