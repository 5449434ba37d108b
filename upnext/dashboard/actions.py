"""The dashboard's actions (retry, cancel, pause, resume, purge, bulk by filter), each through the
store call the CLI uses. app.py lets them run only on a POST with a valid CSRF token, never when
read-only; an action that cannot be done answers 409 with the reason.
"""

from __future__ import annotations

from typing import Any

from upnext.dashboard.views import bulk_filter
from upnext.dashboard.web import HTTPError, Request
from upnext.errors import JobNotFound
from upnext.job import function_of
from upnext.store import bulk
from upnext.store.admin import Admin
from upnext.store.queue import Queue


def job_action(queue: Queue, job_id: str, action: str) -> dict[str, Any]:
    try:
        function_of(job_id)
    except ValueError as exc:
        raise HTTPError(404, str(exc)) from None
    if action == "retry":
        outcome = Admin(queue).retry(job_id)
        if outcome != "queued":
            raise HTTPError(404 if outcome == "missing" else 409, f"job {job_id!r} not retried: {outcome}")
        return {"job_id": job_id, "outcome": outcome}
    outcome, previous = queue.cancel(job_id)
    if outcome == "missing":
        raise HTTPError(404, str(JobNotFound(job_id)))
    if outcome != "cancelled":
        raise HTTPError(409, f"job {job_id!r} not cancelled: it already ended ({previous})")
    return {"job_id": job_id, "outcome": outcome, "status_before": previous}


def function_action(queue: Queue, name: str, action: str) -> dict[str, Any]:
    if not (Admin(queue).is_known(name) or queue.pauses.is_paused(name)):
        raise HTTPError(404, f"unknown function {name!r}: no worker registered it and it has no jobs")
    if action == "purge":
        return {"function": name, "cancelled": Admin(queue).purge(name)}
    changed = queue.pauses.pause(name) if action == "pause" else queue.pauses.resume(name)
    return {"function": name, "paused": action == "pause", "changed": changed}


def preview(queue: Queue, request: Request, action: str) -> dict[str, Any]:
    """How many jobs a bulk action would act on (shown before the confirmation)."""
    if action not in bulk.ACTIONS:
        raise HTTPError(404, f"no bulk action {action!r} (retry or cancel)")
    chosen = bulk_filter(queue, request)
    matched, more = bulk.match(queue, action, chosen)
    return {"action": action, "filter": chosen.to_dict(), "count": len(matched), "more": more,
            "sample": matched[:10]}


def bulk_apply(queue: Queue, request: Request, action: str) -> dict[str, Any]:
    """Act on the jobs the filter matches; ``expect`` (the count the user confirmed) guards
    against a filter that now matches many more than were shown."""
    chosen = bulk_filter(queue, request)
    expected = request.arg("expect")
    if expected is not None and expected.isdigit():
        matched, _ = bulk.match(queue, action, chosen)
        if len(matched) > 2 * int(expected) + 10:
            raise HTTPError(409, f"the filter now matches {len(matched)} jobs, not the {expected} confirmed: "
                                 "preview it again")
    return {"filter": chosen.to_dict(), **bulk.apply(queue, action, chosen).to_dict()}
