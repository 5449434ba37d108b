"""The test helpers users get: ``drain(worker, retries=True)`` on the real queue, and the pytest
plugin ``upnext.testing`` run as a user would (pytester writes a user's test file and runs it)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib

import pytest

import upnext
from tests.workers import ROOT
from upnext.runtime.drain import drain
from upnext.store import keys
from upnext.testing import bind_worker, delete_prefix

pytest_plugins = ["pytester"]

worker = upnext.Worker("testing-plugin")
attempts: list[int] = []


@worker.task(retries=2, retry_delay=3600, retry_jitter=False)  # the retry must still be waiting
def flaky(failures: int) -> int:
    """Fails ``failures`` times, then returns the attempt that succeeded; retries wait an hour."""
    attempt = upnext.get_current_context().attempt
    attempts.append(attempt)
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt}: upstream down")
    return attempt


@pytest.fixture(autouse=True)
def no_attempts(redis_client):
    attempts.clear()


def test_bind_worker_points_a_worker_at_a_prefix_then_puts_it_back(redis_url, redis_client):
    with bind_worker(worker, redis_url, "elsewhere"):
        moved = flaky.submit(0)
    kept = flaky.submit(0)
    assert worker.queue.prefix == "upnext"
    assert redis_client.exists(keys.job("elsewhere", moved.job_id), keys.job("upnext", kept.job_id)) == 2
    assert delete_prefix(redis_url, "elsewhere") > 0
    assert not redis_client.exists(keys.job("elsewhere", moved.job_id))
    assert redis_client.exists(keys.job("upnext", kept.job_id))


def test_drain_leaves_a_retry_waiting_for_its_backoff_by_default():
    future = flaky.submit(2)
    assert drain(worker) == 1
    assert future.status() == "retrying" and attempts == [1]


def test_drain_with_retries_runs_each_retry_at_once_until_the_job_succeeds():
    future = flaky.submit(2)
    assert drain(worker, retries=True) == 3
    assert future.value(timeout=0) == 3 and attempts == [1, 2, 3]


def test_drain_with_retries_stops_when_the_retries_are_used_up():
    future = flaky.submit(5)
    assert drain(worker, retries=True) == 3
    with pytest.raises(upnext.TaskExecutionError, match="attempt 3: upstream down"):
        future.result(timeout=0)


def test_drain_with_retries_runs_a_retry_left_by_an_earlier_drain():
    future = flaky.submit(1)
    drain(worker)
    assert drain(worker, retries=True) == 1
    assert future.value(timeout=0) == 2


def test_drain_leaves_jobs_delayed_by_the_submitter_unless_asked_to_run_them():
    later = flaky.options(delay=3600).submit(0)
    assert drain(worker, retries=True) == 0
    assert later.status() == "queued"
    assert drain(worker, delayed=True) == 1
    assert later.value(timeout=0) == 1


USER_TESTS = '''
import pytest

import upnext
from upnext.testing import drain

worker = upnext.Worker("user-app")
calls = []


@worker.task(retries=2, retry_delay=600, retry_jitter=False)
def fetch_rate(currency: str) -> float:
    calls.append(currency)
    if len(calls) < 3:
        raise ConnectionError("rates service down")
    return 1.1


@pytest.fixture
def app_worker(upnext_bind):
    return upnext_bind(worker)


def test_fetch_rate_retries_twice_then_succeeds(app_worker, upnext_prefix):
    future = fetch_rate.submit("EUR")
    assert drain(app_worker, retries=True) == 3
    assert future.value(timeout=0) == 1.1 and calls == ["EUR"] * 3
    assert app_worker.queue.prefix == upnext_prefix
'''


def _plugin_args() -> list[str]:
    """Once the package is installed (pip install -e .), pytest loads the plugin through its entry
    point, as a user's pytest does; until then it is named on the command line."""
    installed = any(ep.name == "upnext" and ep.value == "upnext.testing"
                    for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "upnext.testing"]


def test_a_user_tests_a_retrying_task_with_the_plugin_and_no_worker_process(pytester, redis_url, redis_client):
    pytester.makepyfile(test_user_app=USER_TESTS)
    result = pytester.runpytest(*_plugin_args(), f"--upnext-redis-url={redis_url}")
    result.assert_outcomes(passed=1)
    assert redis_client.keys("*") == []  # the test's prefix was deleted at teardown


def test_the_plugin_takes_its_redis_from_upnext_test_redis_url(pytester, redis_url, redis_client, monkeypatch):
    monkeypatch.setenv("UPNEXT_TEST_REDIS_URL", redis_url)
    pytester.makepyfile(test_user_app=USER_TESTS)
    pytester.runpytest(*_plugin_args()).assert_outcomes(passed=1)


def test_the_plugin_fails_naming_a_test_redis_that_does_not_answer(pytester):
    pytester.makepyfile(test_user_app=USER_TESTS)
    result = pytester.runpytest(*_plugin_args(), "--upnext-redis-url=redis://:secret@127.0.0.1:1/0")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*upnext's test Redis at redis://:***@127.0.0.1:1/0 does not answer*"])
    assert "secret" not in result.stdout.str()


def test_pyproject_registers_the_plugin_as_a_pytest11_entry_point():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"upnext": "upnext.testing"}


def test_loading_the_plugin_imports_neither_redis_nor_gevent():
    # pytest loads entry-point plugins before a project's conftest, which may monkey-patch first.
    code = "import sys, upnext.testing; print(sorted(m for m in ('redis', 'gevent') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
