"""Any parameter name works in a task, an event or a job log: the library's own leading
parameters are positional-only wherever the user's arguments are forwarded.

The tasks below are named like every library parameter that precedes a forwarded ``*args`` /
``**kwargs``; a worker process runs this module's app (``tests.test_call_signatures:worker``).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import upnext
from upnext.context import JobContext
from upnext.events import Event, HandlerHandle
from upnext.task import SubmitOptions, TaskHandle

WAIT_S = 20.0
NAMED = {"self": "s", "key": "k", "delay": 1, "timeout": 3, "job_id": "j"}  # each also a library parameter

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("test-signatures", concurrency=10)


@worker.task
def echo(wait_timeout: int, self: str, key: str, delay: int, timeout: int, job_id: str) -> dict[str, Any]:
    return {"wait_timeout": wait_timeout, "self": self, "key": key, "delay": delay, "timeout": timeout,
            "job_id": job_id}


@worker.task
def logs_named_fields() -> None:
    upnext.get_current_context().send_log("info", "fields named like send_log's own", level="x", message="y")


thing = worker.event("thing")


@thing.on
def on_thing(self: str, key: str) -> str:
    return f"{self}/{key}"


FORWARDERS = [TaskHandle.__call__, TaskHandle.submit, TaskHandle.submit_idempotent, TaskHandle.submit_on_commit,
              TaskHandle.wait, TaskHandle.wait_idempotent, SubmitOptions.submit, SubmitOptions.submit_idempotent,
              SubmitOptions.wait, Event.send, Event.send_idempotent, HandlerHandle.send, HandlerHandle.send_idempotent,
              JobContext.send_log]
# Upstream's blocking names (SPEC §2b): each is the method it names, so it takes the same arguments.
SYNC_ALIASES = [(TaskHandle, "submit"), (TaskHandle, "submit_idempotent"), (TaskHandle, "wait"),
                (TaskHandle, "wait_idempotent"), (SubmitOptions, "submit"), (SubmitOptions, "submit_idempotent"),
                (SubmitOptions, "wait"), (Event, "send"), (Event, "send_idempotent"), (HandlerHandle, "send"),
                (HandlerHandle, "send_idempotent")]


@pytest.mark.parametrize("method", FORWARDERS, ids=lambda m: m.__qualname__)
def test_the_library_parameters_before_forwarded_arguments_are_positional_only(method):
    params = list(inspect.signature(method).parameters.values())
    forwarded = [p.kind for p in params].index(next(p.kind for p in params if p.kind in (
        p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY)))
    assert [p.name for p in params[:forwarded] if p.kind is not p.POSITIONAL_ONLY] == []


def test_a_direct_call_takes_any_parameter_name():
    assert echo(wait_timeout=2, **NAMED) == {"wait_timeout": 2, **NAMED}


def test_every_submit_and_wait_path_takes_task_parameters_named_like_library_ones(start_worker):
    start_worker("tests.test_call_signatures:worker")
    expected = {"wait_timeout": 2, **NAMED}
    futures = [echo.submit(wait_timeout=2, **NAMED), echo.submit_idempotent("idem-1", wait_timeout=2, **NAMED),
               echo.options(delay=0).submit(wait_timeout=2, **NAMED),
               echo.options().submit_idempotent("idem-2", wait_timeout=2, **NAMED)]
    assert [f.value(WAIT_S) for f in futures] == [expected] * len(futures)
    # wait's own wait_timeout is keyword-only: a task parameter of that name goes positionally.
    assert echo.wait(2, wait_timeout=WAIT_S, **NAMED).value == expected
    assert echo.wait_idempotent("idem-3", 2, wait_timeout=WAIT_S, **NAMED).value == expected
    assert echo.options().wait(2, wait_timeout=WAIT_S, **NAMED).value == expected


def test_events_and_job_logs_take_any_field_name(start_worker):
    start_worker("tests.test_call_signatures:worker")
    sent = [*thing.send(self="a", key="b"), *thing.send_idempotent("idem-4", self="c", key="d"),
            *on_thing.send(self="e", key="f")]
    assert [f.value(WAIT_S) for f in sent] == ["a/b", "c/d", "e/f"]
    logged = logs_named_fields.submit()
    logged.result(WAIT_S)
    assert len(logged.logs()) == 1


@pytest.mark.parametrize("owner, name", SYNC_ALIASES, ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_the_sync_aliases_are_the_methods_they_name(owner, name):
    alias = getattr(owner, f"{name}_sync")
    assert alias is getattr(owner, name)
    assert inspect.signature(alias) == inspect.signature(getattr(owner, name))


def test_the_sync_aliases_submit_wait_and_send(start_worker):
    start_worker("tests.test_call_signatures:worker")
    expected = {"wait_timeout": 2, **NAMED}
    assert echo.submit_sync(wait_timeout=2, **NAMED).value(WAIT_S) == expected
    assert echo.submit_idempotent_sync("idem-5", wait_timeout=2, **NAMED).value(WAIT_S) == expected
    assert echo.wait_sync(2, wait_timeout=WAIT_S, **NAMED).value == expected
    assert echo.wait_idempotent_sync("idem-6", 2, wait_timeout=WAIT_S, **NAMED).value == expected
    sent = [*thing.send_sync(self="a", key="b"), *thing.send_idempotent_sync("idem-7", self="c", key="d"),
            *on_thing.send_sync(self="e", key="f"), *on_thing.send_idempotent_sync("idem-8", self="g", key="h")]
    assert [f.value(WAIT_S) for f in sent] == ["a/b", "c/d", "e/f", "g/h"]
    again = on_thing.send_idempotent_sync("idem-8", self="x", key="y")  # the key has been released: a new job
    assert [f.value(WAIT_S) for f in again] == ["x/y"]
