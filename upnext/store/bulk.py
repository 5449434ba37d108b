"""Retry or cancel many jobs at once *by filter*: one function, a time window, text in the error
("retry every failed charge_card since 14:00 whose error mentions Timeout").

``retry`` picks from the function's failed-jobs index (scored by when they failed); ``cancel``
from its scheduled set, where jobs waiting for their next attempt (and delayed ones) sit. A
match is first counted (``match``: what the dashboard and the CLI show before they ask for a
confirmation), then acted on job by job through the same calls as a single retry or cancel
(requeue.lua, cancel.lua), so a job that changed meanwhile is refused, never overwritten.
Reads are pipelined a page at a time; at most MAX_MATCHES jobs per call (run it again for more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from upnext.store import keys
from upnext.store.admin import Admin
from upnext.store.queue import Queue

ACTIONS = ("retry", "cancel")
MAX_MATCHES = 10_000
PAGE = 1000


@dataclass(frozen=True)
class Filter:
    """Which jobs: those of ``function``, since ``since`` (unix s; failed since for ``retry``,
    enqueued since for ``cancel``), whose error contains ``error`` (case-insensitive)."""

    function: str
    since: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "since": self.since, "error": self.error}


@dataclass
class Outcome:
    """What a bulk action did: the jobs it matched and, per job, the call's answer."""

    action: str
    matched: list[str]
    done: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    more: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "matched": len(self.matched), "done": self.done, "refused": self.refused,
                "more": self.more}


def match(queue: Queue, action: str, chosen: Filter) -> tuple[list[str], bool]:
    """The ids of the jobs ``action`` would act on, newest first, and whether there were more
    than MAX_MATCHES (only the first MAX_MATCHES are returned)."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    index = keys.failed(queue.prefix, chosen.function) if action == "retry" \
        else keys.scheduled(queue.prefix, chosen.function)
    wanted_status, time_field = ("failed", "completed_at") if action == "retry" else ("retrying", "enqueued_at")
    found: list[str] = []
    start = 0
    while len(found) <= MAX_MATCHES:
        ids = _page(queue, index, action, chosen.since, start)
        if not ids:
            break
        start += len(ids)
        pipe = queue.pipeline()
        for job_id in ids:
            pipe.hmget(keys.job(queue.prefix, job_id), "status", "error", time_field)
        for job_id, (status, error, at) in zip(ids, pipe.execute()):
            if _matches(chosen, status, error, at, wanted_status):
                found.append(job_id)
    return found[:MAX_MATCHES], len(found) > MAX_MATCHES


def _page(queue: Queue, index: str, action: str, since: float | None, start: int) -> list[str]:
    """The next PAGE ids of the index, newest first; a failed index is scored by failure time, so
    ``since`` cuts it in Redis."""
    low = "-inf" if since is None or action != "retry" else since
    return cast(list[str], queue.client.zrevrangebyscore(index, "+inf", low, start=start, num=PAGE))


def _matches(chosen: Filter, status: str | None, error: str | None, at: str | None, wanted: str) -> bool:
    if status is None:
        return False
    if chosen.since is not None and (at is None or float(at) < chosen.since):
        return False
    if chosen.error and chosen.error.casefold() not in (error or "").casefold():
        return False
    # a cancel picks jobs that failed an attempt (retrying), or, without an error filter, any
    # waiting one (delayed jobs too)
    return status == wanted or (wanted == "retrying" and not chosen.error and status == "queued")


def apply(queue: Queue, action: str, chosen: Filter) -> Outcome:
    """Match, then retry or cancel each matched job; jobs that changed since are refused."""
    matched, more = match(queue, action, chosen)
    outcome = Outcome(action, matched, more=more)
    admin = Admin(queue)
    for job_id in matched:
        answer = admin.retry(job_id) if action == "retry" else queue.cancel(job_id)[0]
        if answer in ("queued", "cancelled"):
            outcome.done += 1
        else:
            outcome.refused[job_id] = answer
    return outcome
