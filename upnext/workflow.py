"""Composing jobs: gather, map_tasks, first_completed, submit_many.

Each waits through ``Future.result`` (so a waiting job gives its slot back); a child's
failure surfaces as the TaskExecutionError of that child.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from upnext.context import current_or_none
from upnext.future import Future
from upnext.task import TaskHandle


def gather(*futures: Future, return_exceptions: bool = False, timeout: float | None = None) -> list[Any]:
    """The values of ``futures``, in order. With ``return_exceptions`` a failure is returned in
    its place instead of raised."""
    deadline = None if timeout is None else time.monotonic() + timeout
    values: list[Any] = []
    for future in futures:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            values.append(future.value(left))
        except Exception as exc:
            if not return_exceptions:
                raise
            values.append(exc)
    return values


def submit_many(task: TaskHandle[..., Any], inputs: Iterable[dict[str, Any]]) -> list[Future]:
    """Enqueue one job per kwargs dict in ``inputs``: validated first, written in one pipeline."""
    jobs = [task.new_job((), dict(kwargs)) for kwargs in inputs]
    queue = task.worker.queue
    return [Future(job_id, queue) for job_id in queue.enqueue_many(jobs)]


def map_tasks(task: TaskHandle[..., Any], inputs: Iterable[dict[str, Any]], concurrency: int = 10,
              timeout: float | None = None) -> list[Any]:
    """Run ``task`` over ``inputs`` with at most ``concurrency`` jobs live at once; values in order."""
    if concurrency < 1:
        raise ValueError(f"map_tasks(): concurrency must be >= 1, got {concurrency!r}")
    pending = iter(inputs)
    window: deque[Future] = deque()
    values: list[Any] = []
    for kwargs in pending:
        window.append(task.submit(**kwargs))
        if len(window) >= concurrency:
            values.append(window.popleft().value(timeout))
    values.extend(f.value(timeout) for f in window)
    return values


def first_completed(*futures: Future, timeout: float | None = None) -> Any:
    """The value of whichever job ends first; the others are cancelled. A first job that failed
    raises its TaskExecutionError (the others are still cancelled)."""
    if not futures:
        raise ValueError("first_completed() needs at least one future")
    queue = futures[0]._queue
    ctx = current_or_none()
    with ctx.waiting() if ctx is not None else contextlib.nullcontext():
        winner = queue.wait_any([f.job_id for f in futures], timeout)
    if winner is None:
        raise TimeoutError(f"none of {len(futures)} jobs finished within {timeout}s")
    for future in futures:
        if future.job_id != winner:
            future.cancel()
    return next(f for f in futures if f.job_id == winner).value(0)
