"""What each page shows, as JSON-ready dicts: ``/api/<page>`` returns them and the page renders
them, so the two never disagree. Every value comes from a store function (store/overview.py,
history.py, jobdetail.py, stats.py, admin.py, catalog.py, bulk.py); no Redis command is sent here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from upnext.dashboard.charts import quantiles, series
from upnext.dashboard.web import HTTPError, Request
from upnext.job import function_of
from upnext.store import bulk
from upnext.store.admin import Admin
from upnext.store.catalog import last_ended
from upnext.store.crons import listing as cron_listing
from upnext.store.history import ENDED_STATUSES, list_jobs
from upnext.store.jobdetail import read_detail
from upnext.store.overview import Overview, note_text
from upnext.store.queue import Queue
from upnext.store.throughput import ended_per_step, recent_histograms

View = dict[str, Any]
Redact = Callable[[View], View]
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LIMIT = 500


def overview(queue: Queue) -> View:
    """Workers, per function its counts and why it is held back, the notes `status` prints."""
    report = Overview(queue).read()
    now = time.time()
    for note in report["notes"]:
        note["text"] = note_text(note, now)
    report["totals"] = {name: sum(f[name] for f in report["functions"])
                        for name in ("queued", "active", "scheduled", "failed", "awaiting_reclaim")}
    report["paused"] = [f["function"] for f in report["functions"] if f["paused"]]
    report["live_workers"] = sum(1 for w in report["workers"] if w["alive"])
    return report


def charts(queue: Queue) -> View:
    """Runs completed and failed per minute over the last hour and per hour over the day, summed
    over every function, and p50/p95 run time and queue wait of the last one to two hours."""
    names = list(Admin(queue).functions())
    return {"hour": series(60, ended_per_step(queue, names, 60, 60)),
            "day": series(3600, ended_per_step(queue, names, 3600, 24)),
            "quantiles": quantiles(recent_histograms(queue, names))}


def functions(queue: Queue) -> View:
    report = Overview(queue).read()
    options = Admin(queue).functions()
    ended = last_ended(queue, [f["function"] for f in report["functions"]])
    rows = [{**row, "options": options.get(row["function"], {}), **ended.get(row["function"], {})}
            for row in report["functions"]]
    return {"functions": rows, "crons": cron_listing(queue),
            "events": [{"event": name, "handlers": handlers} for name, handlers in queue.registry.events().items()]}


def function(queue: Queue, name: str) -> View:
    rows = [row for row in functions(queue)["functions"] if row["function"] == name]
    if not rows:
        raise HTTPError(404, f"unknown function {name!r}: no worker registered it")
    recent, _ = list_jobs(queue, [name], limit=20)
    return {"function": rows[0], "recent": recent}


def jobs(queue: Queue, request: Request, redact: Redact) -> View:
    """Ended jobs newest first: filters ``function`` (repeatable by comma), ``status``, ``since``
    (90s, 15m, 1h, 7d), ``key``, ``root``, ``limit``, ``cursor``."""
    names = _function_names(queue, request.arg("function"))
    status = request.arg("status")
    if status is not None and status not in ENDED_STATUSES:
        raise HTTPError(400, f"status must be one of {', '.join(ENDED_STATUSES)}, got {status!r}")
    limit = _limit(request.arg("limit"), 50)
    try:
        rows, cursor = list_jobs(queue, names, status=status, since=since_arg(request.arg("since")),
                                 key=request.arg("key"), root_id=request.arg("root"), limit=limit,
                                 cursor=request.arg("cursor"))
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from None
    filters = {name: request.arg(name) or "" for name in ("function", "status", "since", "key", "root")}
    return {"jobs": [redact(row) for row in rows], "next_cursor": cursor, "filters": filters,
            "functions": list(Admin(queue).functions()), "statuses": list(ENDED_STATUSES)}


def job(queue: Queue, job_id: str, redact: Redact) -> View:
    try:
        function_of(job_id)
    except ValueError as exc:
        raise HTTPError(404, str(exc)) from None
    detail = read_detail(queue, job_id)
    if detail is None:
        raise HTTPError(404, f"job {job_id!r} not found (never submitted, or expired)")
    return redact(detail.to_dict())


def failed(queue: Queue, request: Request, redact: Redact) -> View:
    name = request.arg("function")
    if name is not None:
        _function_names(queue, name)
    rows = Admin(queue).failed(name, _limit(request.arg("limit"), 50))
    return {"jobs": [redact(row) for row in rows], "function": name or "",
            "functions": list(Admin(queue).functions())}


def stuck(queue: Queue) -> View:
    """Functions that are paused or held back (the note `status` gives) and the notes."""
    report = overview(queue)
    rows = [f for f in report["functions"] if f["note"] or f["awaiting_reclaim"] or f["paused"]]
    return {"functions": rows, "notes": report["notes"]}


def workers(queue: Queue) -> View:
    report = overview(queue)
    return {"workers": report["workers"], "live_workers": report["live_workers"]}


def search(queue: Queue, request: Request, redact: Redact) -> View:
    """A job id (the job itself) or an idempotency key (the jobs that held it)."""
    text = (request.arg("q") or "").strip()
    found: list[View] = []
    if text:
        try:
            function_of(text)
            detail = read_detail(queue, text)
        except ValueError:
            detail = None
        if detail is not None:
            found.append(redact({k: v for k, v in detail.to_dict().items()
                                 if k in ("job_id", "function", "status", "attempts", "error", "completed_at")}))
        rows, _ = list_jobs(queue, list(Admin(queue).functions()), key=text, limit=50)
        found += [redact(row) for row in rows if row["job_id"] != text]
    return {"q": text, "jobs": found}


def bulk_filter(queue: Queue, request: Request) -> bulk.Filter:
    name = request.arg("function")
    if name is None:
        raise HTTPError(400, "function is required: a bulk action acts on one function's jobs")
    _function_names(queue, name)
    return bulk.Filter(name, since_arg(request.arg("since")), request.arg("error"))


def since_arg(text: str | None) -> float | None:
    """``90s``, ``15m``, ``1h``, ``7d`` ago, or a unix time, as unix seconds."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise HTTPError(400, f"since {text!r} is not a duration such as 90s, 15m, 1h or 7d")
    if not match[2]:
        return float(match[1])
    return time.time() - float(match[1]) * UNITS_S[match[2]]


def _limit(text: str | None, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise HTTPError(400, f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def _function_names(queue: Queue, given: str | None) -> list[str]:
    registered = list(Admin(queue).functions())
    if not given:
        return registered
    names = [n.strip() for n in given.split(",") if n.strip()]
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise HTTPError(404, f"unknown function {unknown[0]!r}: no worker registered it")
    return names
