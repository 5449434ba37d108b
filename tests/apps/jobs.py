"""Tasks used by the worker tests. Each records what it saw in Redis (the ledger), so tests
read facts written by the jobs themselves instead of guessing from timing."""

import json
import os
import time

import upnext
from tests.apps import ledger

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("test-jobs", concurrency=10)


def record(name: str, **fields) -> None:
    ctx = upnext.get_current_context()
    entry = {"job_id": ctx.job_id, "attempt": ctx.attempt, "pid": os.getpid(), "at": time.time(), **fields}
    ledger().rpush(f"ledger:{name}", json.dumps(entry))


@worker.task
def add(a: int, b: int) -> int:
    return a + b


@worker.task(retries=3, retry_delay=0.2, retry_backoff=2.0, retry_jitter=False)  # exact waits: tests time them
def fails_until(succeed_on: int) -> dict:
    ctx = upnext.get_current_context()
    record("fails_until", last_checkpoint=ctx.last_checkpoint)
    ctx.checkpoint({"reached": ctx.attempt})
    if ctx.attempt < succeed_on:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return {"attempt": ctx.attempt}


@worker.task(timeout=0.3)
def sleeps_past_timeout() -> None:
    time.sleep(30)


@worker.task
def sleep_for(seconds: float, tag: str = "") -> str:
    record("sleep_for", tag=tag, phase="start")
    time.sleep(seconds)
    record("sleep_for", tag=tag, phase="end")
    return tag


@worker.task
def waits_for_gate(tag: str, limit_s: float = 30.0) -> str:
    """Runs until the test opens the gate (sets the ``gate`` key) or cancels it: how long it runs
    is the test's decision, never a duration that a loaded machine can outlast."""
    ctx = upnext.get_current_context()
    record("waits_for_gate", tag=tag)
    deadline = time.monotonic() + limit_s
    while not ledger().exists("gate") and not ctx.is_cancelled:
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {tag}: the gate stayed shut for {limit_s}s")
        time.sleep(0.02)
    return tag


@worker.task
def needs_the_flag() -> str:
    if not ledger().get("flag"):
        raise RuntimeError("the flag is not set")
    return "flag seen"


@worker.task
def returns_a_set() -> object:
    return {1, 2}


@worker.task
def reports() -> str:
    ctx = upnext.get_current_context()
    ctx.set_progress(40, "working")
    ctx.send_log("info", "imported", rows=10)
    return "done"


@worker.task
def waits_for_cancel(limit_s: float = 20.0) -> str:
    ctx = upnext.get_current_context()
    record("waits_for_cancel", phase="start")
    deadline = time.monotonic() + limit_s
    while not ctx.is_cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    record("waits_for_cancel", phase="noticed" if ctx.is_cancelled else "gave_up")
    return "returned after cancel"


@worker.task(executor="process", timeout=1.0)
def in_process(seconds: float = 0.0) -> int:
    time.sleep(seconds)
    return os.getpid()


@worker.task(executor="process", timeout=60)
def process_sleeps(seconds: float) -> None:
    record("process_sleeps")
    time.sleep(seconds)


@worker.task
def parent(n: int) -> list:
    ctx = upnext.get_current_context()
    futures = [child.submit(i) for i in range(n)]
    return [f.value(timeout=30) for f in futures] + [{"parent": ctx.job_id, "root": ctx.root_id}]


@worker.task
def child(i: int) -> dict:
    ctx = upnext.get_current_context()
    return {"i": i, "parent_id": ctx.parent_id, "root_id": ctx.root_id}


@worker.task
def kills_its_worker() -> None:
    record("kills_its_worker")
    os._exit(137)


@worker.task(executor="process")
def kills_its_child() -> None:
    os.kill(os.getpid(), 9)


@worker.task(timeout=60)
def burns_cpu(seconds: float) -> str:
    record("burns_cpu")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass  # never yields: the hub is blocked the whole time
    return "burnt"


def _hook(name):
    def hook(ctx, *rest):
        ledger().rpush("hooks", f"{name}:{ctx.attempt}")
    return hook


@worker.task(retries=1, retry_delay=0, on_start=_hook("on_start"), on_success=_hook("on_success"),
             on_failure=_hook("on_failure"), on_retry=_hook("on_retry"), on_complete=_hook("on_complete"))
def hooked(fail_times: int) -> str:
    if upnext.get_current_context().attempt <= fail_times:
        raise RuntimeError("not yet")
    return "ok"
