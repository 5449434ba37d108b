"""Web-side waiters survive a Redis restart: a pooled PubSub whose connection the restart broke
is replaced, and a wait blocked while Redis goes away and comes back returns once the job ends.

Each test runs its own redis-server (``restartable_redis``) and a real worker process on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import upnext
from tests.workers import WorkerProcess, wait_for
from upnext.store import keys

WAIT_S = 30.0


@pytest.fixture
def web(restartable_redis: Any, tmp_path: Path) -> Iterator[Any]:
    """A web process's view (its own Worker, never started) of a real worker on the restartable Redis."""
    client = redis.Redis.from_url(restartable_redis.url, decode_responses=True)
    proc = WorkerProcess("tests.apps.jobs:worker", log_path=tmp_path / "worker.log",
                         env={"UPNEXT_REDIS_URL": restartable_redis.url})
    try:
        proc.wait_registered(client)
        app = upnext.Worker("waiter-web", redis_url=restartable_redis.url)

        @app.task(name="add")
        def add(a: int, b: int) -> int: ...

        @app.task(name="sleep_for")
        def sleep_for(seconds: float, tag: str = "") -> str: ...

        yield app, add, sleep_for, client
    finally:
        proc.stop()
        client.close()
        print(f"--- worker log ---\n{proc.output()}")


def restart(server: Any) -> None:
    server.stop()
    server.start()


def test_waits_after_a_redis_restart_reuse_no_broken_pooled_connection(web, restartable_redis):
    _, add, sleep_for, _ = web
    assert add.wait(1, 2, wait_timeout=WAIT_S).value == 3
    assert add.submit(2, 2).result(WAIT_S).value == 4  # a wait after enqueue: a second pooled PubSub
    assert upnext.first_completed(sleep_for.submit(0.0, "a"), timeout=WAIT_S) == "a"
    restart(restartable_redis)
    assert add.wait(3, 4, wait_timeout=WAIT_S).value == 7
    assert add.submit(5, 5).result(WAIT_S).value == 10
    restart(restartable_redis)
    assert upnext.first_completed(sleep_for.submit(0.0, "b"), timeout=WAIT_S) == "b"


def _returns_across_a_restart(server: Any, client: redis.Redis, wait: Callable[[], tuple[Any, str]],
                              blocked: Callable[[], bool]) -> float:
    """Run ``wait`` (returns the job's value and id) in a thread; once the job started and the
    waiter is ``blocked``, restart Redis; returns how long after the job completed the wait did."""
    outcome: dict[str, Any] = {}

    def waiting() -> None:
        try:
            outcome["value"], outcome["job_id"] = wait()
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever the waiter raised
            outcome["error"] = exc
        outcome["returned_at"] = time.time()

    waiter = threading.Thread(target=waiting, daemon=True)
    waiter.start()
    # Started, and past its first Redis write (the ledger entry): the restart cannot fail the job itself.
    wait_for(lambda: client.llen("ledger:sleep_for"), timeout=WAIT_S, message="the job to start")
    wait_for(blocked, timeout=WAIT_S, message="the waiter to block")
    assert waiter.is_alive()
    restart(server)
    waiter.join(WAIT_S + 5)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["value"] == "across"
    completed_at = float(client.hget(keys.job("upnext", outcome["job_id"]), "completed_at") or 0)
    lag_s = outcome["returned_at"] - completed_at
    print(f"waiter returned {lag_s:.3f} s after the job completed")
    return lag_s


def test_a_wait_blocked_across_a_redis_restart_returns_once_the_job_completes(web, restartable_redis):
    _, _, sleep_for, client = web
    future = sleep_for.submit(3.0, "across")
    channel = keys.done_channel("upnext", future.job_id)
    lag_s = _returns_across_a_restart(restartable_redis, client, lambda: (future.result(WAIT_S).value, future.job_id),
                                      lambda: client.pubsub_numsub(channel)[0][1] == 1)
    assert lag_s < 2.0, lag_s  # woken by the finish's message, not by a later re-read (every POLL_S, 5 s)


def test_a_task_wait_blocked_on_its_notify_list_across_a_redis_restart_returns_once_the_job_completes(
        web, restartable_redis):
    _, _, sleep_for, client = web

    def wait() -> tuple[Any, str]:
        result = sleep_for.wait(3.0, "across", wait_timeout=WAIT_S)
        return result.value, result.job_id
    lag_s = _returns_across_a_restart(restartable_redis, client, wait,
                                      lambda: any(c.get("cmd") == "blpop" for c in client.client_list()))
    assert lag_s < 1.0, lag_s  # popped the finish's push, not a later re-read (every BLOCK_S, 2 s)


def test_a_wait_raises_only_once_redis_stays_down_past_its_deadline(restartable_redis):
    app = upnext.Worker("waiter-web", redis_url=restartable_redis.url)

    @app.task(name="add")
    def add(a: int, b: int) -> int: ...

    future = add.submit(1, 2)  # no worker: it stays queued
    with pytest.raises(TimeoutError):
        future.result(0.2)  # leaves an idle PubSub behind, which the restart breaks
    restartable_redis.stop()
    began = time.monotonic()
    with pytest.raises(redis.ConnectionError, match=f"waiting for job {future.job_id}: Redis unreachable"):
        future.result(1.0)
    assert time.monotonic() - began >= 1.0
    began = time.monotonic()
    with pytest.raises(redis.ConnectionError, match="Connection refused"):
        add.wait(1, 2, wait_timeout=WAIT_S)  # a submit that cannot be written fails at once
    assert time.monotonic() - began < WAIT_S / 2


def test_many_web_waiters_blocked_across_a_redis_restart_all_return(restartable_redis, tmp_path):
    """The chaos figure: 20 result() waiters and 4 first_completed waiters, each on a 3 s job, in
    one web process; Redis restarts while all are blocked."""
    client = redis.Redis.from_url(restartable_redis.url, decode_responses=True)
    proc = WorkerProcess("tests.apps.jobs:worker", "--concurrency", "30", log_path=tmp_path / "worker.log",
                         env={"UPNEXT_REDIS_URL": restartable_redis.url})
    try:
        proc.wait_registered(client)
        app = upnext.Worker("waiter-web", redis_url=restartable_redis.url)

        @app.task(name="sleep_for")
        def sleep_for(seconds: float, tag: str = "") -> str: ...

        futures = [sleep_for.submit(3.0, str(i)) for i in range(24)]
        outcomes: dict[int, Any] = {}

        def wait(i: int) -> None:
            try:
                if i < 20:
                    outcomes[i] = futures[i].result(WAIT_S).value
                else:
                    outcomes[i] = upnext.first_completed(futures[i], timeout=WAIT_S)
            except BaseException as exc:  # noqa: BLE001 - counted and reported below
                outcomes[i] = exc
            outcomes[i] = (outcomes[i], time.time())

        threads = [threading.Thread(target=wait, args=(i,), daemon=True) for i in range(24)]
        for thread in threads:
            thread.start()
        wait_for(lambda: client.llen("ledger:sleep_for") == 24, timeout=WAIT_S, message="all 24 jobs to start")
        channels = [keys.done_channel("upnext", f.job_id) for f in futures]
        wait_for(lambda: all(n == 1 for _, n in client.pubsub_numsub(*channels)), timeout=WAIT_S,
                 message="all 24 waiters to subscribe")
        down_at = time.monotonic()
        restart(restartable_redis)
        down_s = time.monotonic() - down_at
        for thread in threads:
            thread.join(WAIT_S + 5)
        completed = [float(client.hget(keys.job("upnext", f.job_id), "completed_at") or 0) for f in futures]
    finally:
        proc.stop()
        client.close()
    errors = [value for value, _ in outcomes.values() if isinstance(value, BaseException)]
    lags = [outcomes[i][1] - completed[i] for i in range(24)]
    print(f"\nchaos waiters_across_redis_restart: waiters=24 returned={24 - len(errors)} errors={len(errors)} "
          f"redis_restart_s={down_s:.3f} max_lag_after_completion_s={max(lags):.3f}")
    assert errors == [] and [outcomes[i][0] for i in range(24)] == [str(i) for i in range(24)]
    assert max(lags) < 2.0
