"""Property: whatever bytes, field names and shapes a task's stream holds, and whatever text its
jobs return or raise, the worker keeps serving and every normal job completes exactly once."""

from __future__ import annotations

import json

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import upnext
from tests.apps import hostile
from upnext.job import printable
from upnext.store import keys

code_points = st.lists(st.one_of(st.integers(0xD800, 0xDFFF), st.integers(0, 0x10FFFF)), max_size=12)
hex_ids = st.text("0123456789abcdef", min_size=1, max_size=20)
field_values = st.one_of(
    st.binary(max_size=30),
    st.builds(lambda h: f"ping:{h}".encode(), hex_ids),            # a well-formed id of no job
    st.builds(lambda h: f"echo:{h}".encode(), hex_ids),            # a job of another task
    st.builds(lambda v: json.dumps(v).encode(), st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=6)))
entries = st.lists(st.dictionaries(st.one_of(st.just(b"id"), st.binary(min_size=1, max_size=8)), field_values,
                                   min_size=1, max_size=3), max_size=3)


@pytest.fixture
def hostile_worker(start_worker, redis_client):
    return start_worker("tests.apps.hostile:worker", "--concurrency", "20")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=entries, returned=code_points, raised=code_points, n=st.integers(0, 10**6))
def test_the_worker_keeps_serving_whatever_a_stream_holds_or_a_job_returns(hostile_worker, redis_url, garbage,
                                                                           returned, raised, n):
    raw = redis.Redis.from_url(redis_url)
    stream = keys.stream("upnext", "ping")
    for fields in garbage:
        raw.xadd(stream, fields)
    echoed = hostile.echo.submit(returned)
    shouted = hostile.shout.submit(raised)
    assert hostile.ping.wait(n, wait_timeout=15).value == n
    text = "".join(map(chr, returned))
    if printable(text) == text:
        assert echoed.value(timeout=15) == text
    else:
        with pytest.raises(upnext.TaskExecutionError, match="not valid UTF-8"):
            echoed.result(timeout=15)
    with pytest.raises(upnext.TaskExecutionError) as failure:
        shouted.result(timeout=15)
    assert failure.value.error == "ValueError: " + printable("".join(map(chr, raised)))
    assert hostile_worker.proc.poll() is None and "loop_died" not in hostile_worker.output()
    assert raw.hget(keys.job("upnext", shouted.job_id), "attempts") == b"1"
