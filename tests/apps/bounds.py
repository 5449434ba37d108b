"""Tasks for tests/test_bounds.py: each stores something as large (or as many) as it is told,
so the tests can check the caps on results, checkpoints and job logs."""

import time

import upnext

# Explicit: the tests run several jobs of this app at once (the default concurrency is 2).
worker = upnext.Worker("test-bounds", concurrency=10)


@worker.task(retries=2, retry_delay=0.1)
def returns_text(size: int) -> str:
    return "x" * size


@worker.task(executor="process", retries=2, retry_delay=0.1)
def returns_text_in_child(size: int) -> str:
    return "x" * size


@worker.task
def checkpoints(size: int) -> str:
    ctx = upnext.get_current_context()
    ctx.checkpoint({"small": True})
    try:
        ctx.checkpoint("c" * size)
    except ValueError as exc:
        return f"refused: {exc}"
    return "stored"


@worker.task
def logs(count: int, size: int) -> int:
    ctx = upnext.get_current_context()
    for i in range(count):
        ctx.send_log("info", f"line {i} " + "y" * size, i=i)
    return count


@worker.task
def quick(n: int) -> int:
    return n


@worker.task
def naps(seconds: float, n: int) -> int:
    time.sleep(seconds)
    return n


@worker.task
def reports_progress(size: int) -> str:
    upnext.get_current_context().set_progress(50, "p" * size)
    return "reported"
