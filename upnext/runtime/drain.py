"""``upnext.runtime.drain(worker)``: run a worker's queued jobs in the calling process, one at a time.

For an app's own tests: jobs go through the real queue, Lua scripts and JSON encoding (so a
non-JSON argument or result fails here as it would in production), with no worker process.
Process-executor tasks run inline. Jobs waiting in the scheduled set are left there unless
asked for: ``retries=True`` runs each retry at once instead of after its backoff (so a retrying
task is tested with no sleep), ``delayed=True`` likewise runs jobs submitted with ``delay``/``eta``.
A paused function's jobs are left queued, as workers leave them. Each job is read and started
by one start.lua call (a take), so priorities hold as they do in a worker: high, normal, low.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from upnext.runtime.executor import JobRunner, Started
from upnext.store.records import Completion

if TYPE_CHECKING:
    from upnext.worker import Worker


def drain(worker: Worker, max_jobs: int | None = None, *, retries: bool = False, delayed: bool = False) -> int:
    """Run due jobs of ``worker``'s tasks until none is left (or ``max_jobs`` ran); returns how many.
    ``retries``: also run jobs waiting for a retry's backoff, at once; ``delayed``: also jobs
    submitted with a delay or eta that has not come yet."""
    queue = worker.queue
    functions = list(worker.tasks)
    consumer = f"drain-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    runner = JobRunner(queue, {}, None, "thread", worker_id=consumer)
    limits = {name: t.limits for name, t in worker.tasks.items() if t.limits.any}
    queue.ensure_groups(functions)
    early = {"retrying"} if retries else set()
    if delayed:
        early.add("queued")  # queued yet scheduled: submitted for later (or held back by a rate limit)
    paused = queue.pauses.paused()  # their jobs stay queued, as a worker leaves them
    ran = 0
    try:
        while max_jobs is None or ran < max_jobs:
            serving = [f for f in functions if f not in paused]
            for function in serving:
                queue.promote(function)
                if early:
                    queue.promote_now(function, early)
            taken = next((t for f in serving for t in queue.take(consumer, consumer, {f: 1}, limits)), None)
            if taken is None:
                return ran
            delivery, reply = taken
            if reply[0] == "run":
                task = worker.tasks[delivery.function]
                started = Started.from_reply(delivery, reply)
                queue.settle(consumer, [runner.run(task, started, runner.context_for(task, started))], limits)
                ran += 1
            elif reply[0] == "poison":
                queue.settle(consumer, [Completion(delivery, "failed", failure_reason="lost", idem_key=reply[2],
                                                   error=f"job {delivery.job_id}: delivered {reply[1]} times")],
                             limits)
            elif reply[0] == "paused":  # paused since the drain began: start.lua handed it back
                paused.add(delivery.function)
    finally:
        queue.registry.forget_consumer(consumer, functions)
    return ran
