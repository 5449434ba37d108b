"""job.py and keys.py are pure: job ids, task names, call encoding and key layout, no Redis."""

from __future__ import annotations

import inspect
import re

import pytest

from upnext import job
from upnext.job import check_function_name, dumps, encode_call, function_of, loads, new_job_id
from upnext.store import keys


def send_email(to: str, subject: str = "hi", *, urgent: bool = False) -> None:
    """A task-shaped function for encode_call."""


@pytest.mark.parametrize("name", ["send_email", "a", "app.tasks.send-email", "emails.v2/send"])
def test_job_id_round_trips_to_its_task_name(name):
    assert function_of(new_job_id(name)) == name


def test_job_ids_are_unique():
    assert len({new_job_id("f") for _ in range(1000)}) == 1000


@pytest.mark.parametrize("bad", ["nonsense", ":abc", "send_email:", ""])
def test_function_of_a_bad_id_raises_naming_the_id(bad):
    with pytest.raises(ValueError, match=re.escape(f"job id {bad!r} is not an upnext job id")):
        function_of(bad)


def test_check_function_name_returns_a_good_name():
    assert check_function_name("app.tasks.send_email") == "app.tasks.send_email"


@pytest.mark.parametrize("bad", ["", "a:b", "a{b", "a}b", "a b", "a\tb", "a\nb"])
def test_check_function_name_refuses_characters_that_would_break_keys_or_ids(bad):
    with pytest.raises(ValueError, match=re.escape(f"task name {bad!r}")):
        check_function_name(bad)


def test_encode_call_returns_compact_json_of_args_and_kwargs():
    assert encode_call(send_email, "send_email", ("a@b.c",), {"urgent": True}) == ('["a@b.c"]', '{"urgent":true}')


@pytest.mark.parametrize("args, kwargs", [((), {}), (("a", "b", "c"), {}), (("a",), {"nope": 1}),
                                          (("a", "b", True), {})])
def test_encode_call_refuses_a_call_that_does_not_match_the_signature_naming_the_task(args, kwargs):
    with pytest.raises(TypeError, match=r"^send_email\(\): "):
        encode_call(send_email, "send_email", args, kwargs)


@pytest.mark.parametrize("args, kwargs, culprit", [(({1, 2},), {}, "to"), (("a", object()), {}, "subject"),
                                                   (("a",), {"urgent": b"x"}, "urgent"),
                                                   (("a",), {"subject": {"nested": {1, 2}}}, "subject")])
def test_encode_call_refuses_a_non_json_argument_naming_it(args, kwargs, culprit):
    with pytest.raises(TypeError, match=rf"^send_email\(\): argument '{culprit}' is not JSON-serializable"):
        encode_call(send_email, "send_email", args, kwargs)


def test_dumps_and_loads_round_trip_and_empty_means_none():
    value = {"ü": [1, 2.5, None, True]}
    assert loads(dumps(value)) == value
    assert loads("") is None and loads(None) is None


def test_all_keys_of_one_job_share_its_task_hash_tag():
    job_id = new_job_id("send_email")
    job_keys = [keys.job("upnext", job_id), keys.logs("upnext", job_id), keys.done_channel("upnext", job_id),
                keys.stream("upnext", "send_email"), keys.scheduled("upnext", "send_email"),
                keys.dedup("upnext", "send_email", "order-1"), keys.failed("upnext", "send_email"),
                keys.leases("upnext", "send_email"), keys.rate("upnext", "send_email"),
                keys.cron("upnext", "send_email"), keys.cron_lock("upnext", "send_email")]
    assert len(set(job_keys)) == len(job_keys)
    assert {_hash_tag(k) for k in job_keys} == {"send_email"}


def test_keys_of_different_tasks_have_different_hash_tags():
    assert _hash_tag(keys.stream("upnext", "a")) != _hash_tag(keys.stream("upnext", "b"))


def test_worker_registry_keys_share_one_hash_tag_of_their_own():
    registry = [keys.worker("upnext", "w1"), keys.worker_ids("upnext"), keys.last_seen("upnext"),
                keys.functions("upnext"), keys.event_handlers("upnext", "order.placed")]
    assert {_hash_tag(k) for k in registry} == {"_workers"}


@pytest.mark.parametrize("prefix", ["upnext", "myapp", "a:b"])
def test_every_key_starts_with_the_prefix(prefix):
    job_id = new_job_id("f")
    every = [keys.job(prefix, job_id), keys.logs(prefix, job_id), keys.done_channel(prefix, job_id),
             keys.stream(prefix, "f"), keys.scheduled(prefix, "f"), keys.dedup(prefix, "f", "k"),
             keys.failed(prefix, "f"), keys.leases(prefix, "f"), keys.rate(prefix, "f"), keys.cron(prefix, "f"),
             keys.cron_lock(prefix, "f"), keys.worker(prefix, "w1"), keys.worker_ids(prefix),
             keys.last_seen(prefix), keys.functions(prefix), keys.event_handlers(prefix, "e")]
    assert all(k.startswith(prefix + ":{") for k in every)


def test_job_keys_are_derived_from_the_id_alone():
    job_id = new_job_id("f")
    assert keys.job("upnext", job_id) == f"upnext:{{f}}:job:{job_id}"
    with pytest.raises(ValueError, match="'junk'"):
        keys.job("upnext", "junk")


def _hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the text between the first '{' and the next '}'."""
    start = key.index("{") + 1
    return key[start:key.index("}", start)]


def _shapes(a, b=1, /, c=2, *args, d, e=3, **kw): ...
def _keyword_only(*, k): ...
def _positional_only(a, /): ...
def _nothing(): ...


@pytest.mark.parametrize("fn, params", [
    (send_email, ["to", "subject=", "*", "urgent="]),
    (_shapes, ["a", "b=", "/", "c=", "*args", "d", "e=", "**kw"]),
    (_keyword_only, ["*", "k"]),
    (_positional_only, ["a", "/"]),
    (_nothing, []),
])
def test_registered_params_rebuild_a_signature_that_binds_like_the_function(fn, params):
    assert job.params_of(fn) == params
    rebuilt, real = job.signature_from(params), inspect.signature(fn)
    assert [(p.name, p.kind, p.default is p.empty) for p in rebuilt.parameters.values()] == \
        [(p.name, p.kind, p.default is p.empty) for p in real.parameters.values()]


def test_a_callable_without_a_signature_registers_no_params():
    assert job.params_of(max) is None
