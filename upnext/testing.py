"""Test helpers for apps that use upnext, loaded by pytest as the plugin ``upnext`` (a pytest11
entry point): a unique key prefix on a real test Redis per test, a worker bound to it, and
``drain`` to run its jobs in the test's own process through the real queue. No worker process,
no mock of Redis: what a test sees (JSON encoding, retries, limits) is what production does.

    from upnext.testing import drain

    def test_flaky_task_succeeds_on_its_third_attempt(upnext_bind):
        upnext_bind(app.worker)
        future = app.fetch_rates.submit("EUR")
        drain(app.worker, retries=True)      # retries run at once, not after their backoff
        assert future.value(timeout=0) == {...}

The test Redis: ``--upnext-redis-url``, else ``UPNEXT_TEST_REDIS_URL``, else
``redis://localhost:6379/15``. Only keys under each test's prefix are written and deleted.
pytest loads this module before a project's conftest, which may monkey-patch for gevent: so
nothing here imports redis, gevent or the queue until a fixture or helper runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from upnext.worker import Worker

__all__ = ["DEFAULT_REDIS_URL", "bind_worker", "delete_prefix", "drain"]

DEFAULT_REDIS_URL = "redis://localhost:6379/15"


def drain(worker: Worker, max_jobs: int | None = None, *, retries: bool = False, delayed: bool = False) -> int:
    """Run ``worker``'s queued jobs here through the real queue (``upnext.runtime.drain.drain``): with
    ``retries=True`` retries run at once instead of after their backoff, with ``delayed=True``
    jobs submitted with a delay or eta too. Returns how many jobs ran."""
    from upnext.runtime.drain import drain as run

    return run(worker, max_jobs, retries=retries, delayed=delayed)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--upnext-redis-url", default=None,
                     help=f"Redis for upnext's fixtures (default: UPNEXT_TEST_REDIS_URL, then {DEFAULT_REDIS_URL})")


@contextmanager
def bind_worker(worker: Worker, redis_url: str, prefix: str) -> Iterator[Worker]:
    """Point ``worker`` (submitting and draining) at ``redis_url`` under ``prefix`` for the block;
    afterwards it is back on its own settings, with the test's connections closed."""
    own = dict(worker.settings)
    worker.configure({**own, "redis_url": redis_url, "prefix": prefix})
    client = worker.queue.client
    try:
        yield worker
    finally:
        worker.configure(own)
        client.close()


def delete_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` (SCAN, fine for a test Redis); returns how many."""
    from upnext.store.connection import connect

    client = connect(redis_url)
    try:
        found = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for key in found:  # one at a time: on a Redis Cluster the keys live in many slots
            client.unlink(key)
        return len(found)
    finally:
        client.close()


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


@pytest.fixture(scope="session")
def upnext_redis_url(pytestconfig: pytest.Config) -> str:
    """The test Redis's URL; the session fails at once, naming it, if it does not answer."""
    import redis

    from upnext.store.connection import connect

    url: str = (pytestconfig.getoption("--upnext-redis-url") or os.environ.get("UPNEXT_TEST_REDIS_URL")
                or DEFAULT_REDIS_URL)
    client = connect(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"upnext's test Redis at {_masked(url)} does not answer ({exc}); start one or pass "
                    "--upnext-redis-url / set UPNEXT_TEST_REDIS_URL", pytrace=False)
    finally:
        client.close()
    return url


@pytest.fixture
def upnext_prefix(upnext_redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted when the test ends."""
    prefix = f"upnext-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(upnext_redis_url, prefix)


@pytest.fixture
def upnext_bind(upnext_redis_url: str, upnext_prefix: str) -> Iterator[Callable[[Worker], Worker]]:
    """``upnext_bind(worker)`` points the worker at the test Redis under this test's prefix until
    the test ends (then each bound worker is put back); returns the worker."""
    with ExitStack() as bound:
        from upnext.worker import Worker

        def bind(worker: Worker) -> Worker:
            if not isinstance(worker, Worker):
                raise TypeError(f"upnext_bind() takes an upnext.Worker, got {worker!r}")
            return bound.enter_context(bind_worker(worker, upnext_redis_url, upnext_prefix))
        yield bind
