"""One job's detail as stored, read in three pipelined round trips whatever the job: its record,
``send_log`` entries and attempts (the runs that ran again: retry.lua, release.lua, requeue.lua
push them; the last run is the record's own fields), then its workflow tree's jobs (the ``tree``
index of each function, store/history.py) to find its children.

What ``upnext-gevent show`` prints (and the dashboard). Decoding is tolerant: a field that is not
the JSON it should be is shown as its raw text. A function registered with ``hide_args=True`` has
its arguments and result shown as ``"hidden"``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from upnext.job import function_of, loads
from upnext.store import keys
from upnext.store.queue import Queue

JSON_FIELDS = ("args", "kwargs", "result", "checkpoint")
TEXT_FIELDS = ("function", "status", "error", "traceback", "failure_reason", "progress_message", "parent_id",
               "root_id", "key", "worker")
INSTANT_FIELDS = ("enqueued_at", "run_at", "started_at", "completed_at", "checkpoint_at", "expires_at")
HIDDEN = "hidden"
PRIVATE_FIELDS = ("args", "kwargs", "result")


@dataclass(frozen=True)
class JobDetail:
    """A job's record (its hash, as stored), its log entries and attempt entries (JSON lines,
    oldest first), the ids of its children and whether its function hides its arguments."""

    job_id: str
    record: dict[str, str]
    logs: list[str]
    attempt_entries: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    hidden: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The detail with JSON fields decoded, numbers as numbers and absent fields as None."""
        record = self.record
        out: dict[str, Any] = {"job_id": self.job_id}
        out.update({name: record.get(name) or None for name in TEXT_FIELDS})
        out["function"] = out["function"] or function_of(self.job_id)
        out["root_id"] = out["root_id"] or self.job_id  # a job with no workflow root stores none: its own
        out["attempts"] = int(record.get("attempts") or 0)
        out["priority"] = record.get("priority") or "normal"  # stored only when not normal
        out["progress"] = _number(record.get("progress")) or 0.0
        out["progress_message"] = out["progress_message"] or ""
        out.update({name: _decoded(record.get(name)) for name in JSON_FIELDS})
        out["args"] = [] if out["args"] is None else out["args"]  # no arguments are stored as none
        out["kwargs"] = {} if out["kwargs"] is None else out["kwargs"]
        if self.hidden:
            out.update({name: HIDDEN for name in PRIVATE_FIELDS})
        out.update({name: _number(record.get(name)) for name in INSTANT_FIELDS})
        out["logs"] = [_decoded(line) for line in self.logs]
        out["runs"] = self.runs()
        out["children"] = list(self.children)
        return out

    def runs(self) -> list[dict[str, Any]]:
        """Each run: attempt, started_at, ended_at (None while it runs), worker, outcome, error."""
        runs = [{**entry, "started_at": _number(entry.get("started_at")), "ended_at": _number(entry.get("ended_at"))}
                for entry in map(_decoded, self.attempt_entries) if isinstance(entry, dict)]
        record, status = self.record, self.record.get("status", "")
        started = _number(record.get("started_at"))
        already = bool(runs) and runs[-1]["started_at"] == started
        if started is None or already or status not in ("active", "complete", "failed", "cancelled"):
            return runs
        ended = None if status == "active" else _number(record.get("completed_at"))
        return [*runs, {"attempt": int(record.get("attempts") or 0), "started_at": started, "ended_at": ended,
                        "worker": record.get("worker") or "", "outcome": "running" if status == "active" else status,
                        "error": record.get("error") or ""}]


def read_detail(queue: Queue, job_id: str, functions: Sequence[str] | None = None) -> JobDetail | None:
    """The job's detail, or None when it has no record (never submitted, or expired). Its keys share
    the job's hash slot; the children are looked up in the tree index of each of ``functions``
    (default: the registered ones and the job's own), one pipeline, on Redis Cluster too."""
    function = function_of(job_id)
    pipe = queue.pipeline()
    pipe.hgetall(keys.job(queue.prefix, job_id))
    pipe.lrange(keys.logs(queue.prefix, job_id), 0, -1)
    pipe.lrange(keys.attempts(queue.prefix, job_id), 0, -1)
    pipe.hgetall(keys.functions(queue.prefix))
    record, logs, attempts, registered = pipe.execute()
    if not record:
        return None
    names = list(functions) if functions is not None else sorted({*registered, function})
    root_id = record.get("root_id") or job_id
    options = _options(registered.get(function))
    return JobDetail(job_id, cast(dict[str, str], record), cast(list[str], logs), cast(list[str], attempts),
                     _children(queue, names, root_id, job_id), bool(options.get("hide_args")))


def hidden_functions(queue: Queue) -> set[str]:
    """The registered functions whose arguments and results every view hides (``hide_args``)."""
    registered = cast(dict[str, str], queue.client.hgetall(keys.functions(queue.prefix)))
    return {name for name, raw in registered.items() if _options(raw).get("hide_args")}


def _children(queue: Queue, functions: Sequence[str], root_id: str, job_id: str) -> list[str]:
    """Jobs of the tree rooted at ``root_id`` whose parent is ``job_id`` (the tree index holds jobs
    that ended; a child still running is not in it yet)."""
    pipe = queue.pipeline()
    for name in functions:
        pipe.zrange(keys.tree(queue.prefix, name, root_id), 0, -1)
    members = [m for found in pipe.execute() for m in found if m != job_id]
    if not members:
        return []
    pipe = queue.pipeline()
    for member in members:
        pipe.hget(keys.job(queue.prefix, member), "parent_id")
    return [m for m, parent in zip(members, pipe.execute()) if parent == job_id]


def _options(raw: str | None) -> dict[str, Any]:
    try:
        options = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return options if isinstance(options, dict) else {}


def _decoded(text: str | None) -> Any:
    try:
        return loads(text)
    except ValueError:
        return text


def _number(text: Any) -> float | None:
    try:
        return float(text) if text else None
    except (TypeError, ValueError):
        return None
