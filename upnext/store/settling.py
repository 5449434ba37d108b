"""Writing what runs came to: finish.lua for the runs that ended (a call per task, their
history and stats with them), retry.lua for the attempts that will run again, all of a batch in
one pipeline. ``Queue.settle`` is the entry point."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from upnext.job import dumps
from upnext.store import keys
from upnext.store.records import Completion, by_function

if TYPE_CHECKING:
    from upnext.store.queue import Queue


def write(queue: Queue, consumer: str, completions: Sequence[Completion]) -> list[str]:
    """A batch of finishes and retries in one pipeline (one call when all are finishes of one
    task); one reply word per completion, in order."""
    functions = set(map(attrgetter("delivery.function"), completions))
    if len(functions) == 1 and "retry" not in map(attrgetter("status"), completions):
        # The usual case: finishes of one task, one call, no pipeline object to build.
        return list(call_finish(queue, queue.client, consumer, functions.pop(), list(completions)))
    retries = [c for c in completions if c.status == "retry"]
    finishes = by_function(c for c in completions if c.status != "retry")
    pipe = queue.pipeline()
    for c in retries:
        call_retry(queue, pipe, consumer, c)
    for function, group in finishes.items():
        call_finish(queue, pipe, consumer, function, group)
    replies = pipe.execute()
    retry_replies = iter(replies[: len(retries)])
    finish_replies = {f: iter(r) for f, r in zip(finishes, replies[len(retries):])}
    return [next(retry_replies) if c.status == "retry" else next(finish_replies[c.delivery.function])
            for c in completions]


def call_finish(queue: Queue, client: Any, consumer: str, function: str, group: list[Completion]) -> Any:
    """finish.lua for ``group`` (completions of one task): outcome, history, stats. The jobs' own
    keys are built by the script from the task's tag; the completions go as they are, one JSON
    array of named tuples, encoded in C (see finish.lua)."""
    task_keys = [keys.stream(queue.prefix, function), keys.leases(queue.prefix, function),
                 keys.failed(queue.prefix, function), keys.ended(queue.prefix, function), *queue.stats_keys(function)]
    return queue.scripts.finish(keys=task_keys, client=client, args=[
        consumer, queue.job_ttl_s, queue.completed_ttl_s, keys.tag(queue.prefix, function), dumps(group)])


def call_retry(queue: Queue, pipe: Any, consumer: str, c: Completion) -> None:
    """retry.lua for one failed attempt that will run again."""
    d = c.delivery
    queue.scripts.retry(
        keys=[keys.stream(queue.prefix, d.function), keys.scheduled(queue.prefix, d.function),
              keys.job(queue.prefix, d.job_id), keys.leases(queue.prefix, d.function),
              keys.attempts(queue.prefix, d.job_id), *queue.stats_keys(d.function)],
        args=[consumer, d.entry_id, d.job_id, c.delay_s, c.error, c.traceback, c.failure_reason,
              queue.stream_maxlen, seconds_arg(c.run_s)],
        client=pipe)


def seconds_arg(run_s: float | None) -> str:
    """A run's duration for the stats ARGV: '' when it was not measured."""
    return "" if run_s is None else repr(float(run_s))
