"""Every stored value is bounded (results, checkpoints, job logs, the done-channel message), and a
full Redis (maxmemory reached under noeviction) refuses submits at once while a worker keeps its
completions, stays alive and says why in its log and health file. Real Redis, real workers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

import upnext
from tests.apps import bounds as app
from tests.workers import wait_for
from upnext.context import bounded_entry, encoded_bytes
from upnext.store import keys

APP = "tests.apps.bounds:worker"
PUBLISH_RECORD_MAX_BYTES = 65536  # settle() in upnext/lua/_lib.lua


def test_a_result_over_max_result_bytes_fails_its_job_at_once_naming_the_cap(start_worker):
    start_worker(APP, env={"UPNEXT_MAX_RESULT_BYTES": "1000"})
    fits, over = app.returns_text.submit(size=998), app.returns_text.submit(size=999)
    assert fits.result(timeout=20).value == "x" * 998  # 1000 bytes encoded, quotes included
    with pytest.raises(upnext.TaskExecutionError) as failed:
        over.result(timeout=20)
    error = failed.value.error or ""
    assert f"returns_text (job {over.job_id})" in error and "1001 bytes" in error and "max_result_bytes=1000" in error
    assert failed.value.task_result.attempts == 1  # not retried: the same result would be too large again


def test_a_process_job_result_over_max_result_bytes_fails_the_same_way(start_worker):
    start_worker(APP, env={"UPNEXT_MAX_RESULT_BYTES": "1000", "UPNEXT_PROCESS_POOL_SIZE": "1"})
    over = app.returns_text_in_child.submit(size=5000)
    with pytest.raises(upnext.TaskExecutionError) as failed:
        over.result(timeout=30)
    error = failed.value.error or ""
    assert f"returns_text_in_child (job {over.job_id})" in error and "5002 bytes" in error
    assert "max_result_bytes=1000" in error and failed.value.task_result.attempts == 1
    assert app.returns_text_in_child.submit(size=10).result(timeout=30).value == "x" * 10


def test_a_checkpoint_over_max_checkpoint_bytes_raises_in_the_job_and_keeps_the_last_one(start_worker):
    start_worker(APP, env={"UPNEXT_MAX_CHECKPOINT_BYTES": "500"})
    future = app.checkpoints.submit(size=1000)
    value = future.result(timeout=20).value
    assert value.startswith("refused: ") and f"job {future.job_id}" in value and "checkpoints" in value
    assert "1002 bytes" in value and "max_checkpoint_bytes=500" in value
    assert future.checkpoint() == {"small": True}


def test_job_logs_keep_the_newest_max_log_entries_and_cut_long_entries(start_worker):
    start_worker(APP, env={"UPNEXT_MAX_LOG_ENTRIES": "10", "UPNEXT_MAX_LOG_ENTRY_BYTES": "300"})
    many = app.logs.submit(count=25, size=0)
    assert many.result(timeout=20).value == 25
    assert [entry["i"] for entry in many.logs()] == list(range(15, 25))
    long = app.logs.submit(count=1, size=5000)
    long.result(timeout=20)
    [raw] = app.worker.queue.logs(long.job_id)
    entry = json.loads(raw)
    assert len(raw.encode()) <= 300 and entry["message"].startswith("line 0 yyy") and entry["level"] == "info"
    assert entry["truncated"] > 5000 and "i" not in entry  # its full size; other fields dropped


@pytest.mark.parametrize("extra", [1, 200_000])
def test_a_large_result_reaches_its_waiter_and_the_done_message_stays_small(start_worker, redis_client, extra):
    start_worker(APP)
    size = PUBLISH_RECORD_MAX_BYTES + extra
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    future = app.returns_text.options(delay=1.0).submit(size=size)
    listener.subscribe(keys.done_channel("upnext", future.job_id))
    try:
        assert future.result(timeout=20).value == "x" * size
        message = wait_for(lambda: listener.get_message(timeout=0.1), message="the done message")
    finally:
        listener.close()
    assert message["data"] == "complete"


def test_a_small_result_is_still_published_whole(start_worker, redis_client):
    start_worker(APP)
    listener = redis_client.pubsub(ignore_subscribe_messages=True)
    future = app.returns_text.options(delay=1.0).submit(size=100)
    listener.subscribe(keys.done_channel("upnext", future.job_id))
    try:
        assert future.result(timeout=20).value == "x" * 100
        message = wait_for(lambda: listener.get_message(timeout=0.1), message="the done message")
    finally:
        listener.close()
    record = json.loads(message["data"])
    assert record[record.index("result") + 1] == json.dumps("x" * 100)


@pytest.fixture
def full_redis(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """The test server with noeviction; ``fill(client)`` then fills it until writes are refused.
    maxmemory and the policy are restored, and the junk deleted, at teardown."""
    before = redis_client.config_get("maxmemory*")
    redis_client.config_set("maxmemory-policy", "noeviction")
    yield redis_client
    redis_client.config_set("maxmemory", before["maxmemory"])
    redis_client.config_set("maxmemory-policy", before["maxmemory-policy"])
    for key in redis_client.scan_iter(match="junk:*", count=1000):
        redis_client.delete(key)


def fill(client: redis.Redis, headroom_bytes: int = 2_000_000, margin_bytes: int = 256 * 1024) -> None:
    """Lower maxmemory to a little above what is used, write junk until Redis refuses, then lower
    it ``margin_bytes`` below what is used: Redis stays full while client buffers come and go."""
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + headroom_bytes)
    chunk = "j" * 65536
    for i in range(100_000):
        try:
            client.set(f"junk:{i}", chunk)
        except redis.exceptions.OutOfMemoryError:
            break
    else:
        raise AssertionError("Redis never refused a write: maxmemory did not take effect")
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - margin_bytes)


def test_a_submit_to_a_full_redis_raises_at_once_saying_redis_is_out_of_memory(full_redis):
    fill(full_redis)
    began = time.monotonic()
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="maxmemory"):
        app.quick.submit(n=1)
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="maxmemory"):
        upnext.submit_many(app.quick, [{"n": i} for i in range(5)])
    assert time.monotonic() - began < 2
    assert not list(full_redis.scan_iter(match="upnext:job:*"))


def test_a_worker_facing_a_full_redis_stays_alive_keeps_its_jobs_and_says_why(start_worker, full_redis, tmp_path):
    health = tmp_path / "health"
    worker = start_worker(APP, "--concurrency", "20", env={"UPNEXT_HEALTH_FILE": str(health),
                                                           "UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "3000"})
    wait_for(lambda: health.exists() and health.read_text() == "ok\n", message="a healthy heartbeat")
    futures = [app.naps.submit(seconds=2.0, n=i) for i in range(20)]
    wait_for(lambda: all(f.status() == "active" for f in futures), message="every job running")
    fill(full_redis)
    state = wait_for(lambda: health.read_text().startswith("redis_full") and health.read_text(),
                     timeout=20, message="the health file saying Redis is full")
    assert "maxmemory" in state and "completions waiting in the outbox" in state and state.count("\n") == 1
    touched = health.stat().st_mtime_ns
    wait_for(lambda: health.stat().st_mtime_ns > touched, timeout=20, message="the health file touched while full")
    assert "heartbeat_failed" in worker.output() and worker.proc.poll() is None
    # A refused write (OutOfMemoryError) is a RedisError: the flusher keeps a refused batch and retries it.
    assert issubclass(redis.exceptions.OutOfMemoryError, redis.RedisError)
    full_redis.config_set("maxmemory", 0)
    assert [f.result(timeout=30).value for f in futures] == list(range(20))
    assert all(f.result().attempts == 1 for f in futures)
    wait_for(lambda: health.read_text() == "ok\n", timeout=20, message="the health file back to ok")


@pytest.mark.parametrize("message", ["a" * 5000, "é" * 3000, "\x00" * 3000, '"\\' * 2000, "ok \udcff " * 900,
                                     "😀" * 2000])
def test_a_long_log_entry_is_cut_to_valid_json_within_its_cap_whatever_its_characters(message):
    raw = bounded_entry({"at": 1.5, "level": "info", "message": message, "rows": 10}, 300)
    entry = json.loads(raw)
    assert encoded_bytes(raw) <= 300 and entry["level"] == "info" and entry["truncated"] > 300
    kept = message.replace("\udcff", "")  # a lone surrogate inside the cut is dropped with it
    assert kept.startswith(entry["message"]) and len(entry["message"]) > 10
    assert bounded_entry({"at": 1.5, "level": "info", "message": "short"}, 300) == \
        '{"at":1.5,"level":"info","message":"short"}'


def test_a_long_progress_message_is_cut_to_max_log_entry_bytes(start_worker):
    start_worker(APP, env={"UPNEXT_MAX_LOG_ENTRY_BYTES": "300"})
    future = app.reports_progress.submit(size=5000)
    future.result(timeout=20)
    record = app.worker.queue.get(future.job_id) or {}
    assert record["progress_message"] == "p" * 300
