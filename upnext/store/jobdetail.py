"""One job's detail as stored: its record and its ``send_log`` entries, read in one round trip.

What ``upnext-gevent show`` prints. The history work extends it (each attempt, children);
decoding is tolerant: a field that is not the JSON it should be is shown as its raw text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from upnext.job import function_of, loads
from upnext.store import keys
from upnext.store.queue import Queue

JSON_FIELDS = ("args", "kwargs", "result", "checkpoint")
TEXT_FIELDS = ("function", "status", "error", "traceback", "failure_reason", "progress_message", "parent_id",
               "root_id", "key", "worker")
INSTANT_FIELDS = ("enqueued_at", "run_at", "started_at", "completed_at", "checkpoint_at")


@dataclass(frozen=True)
class JobDetail:
    """A job's record (its hash, as stored) and its log entries (JSON lines, oldest first)."""

    job_id: str
    record: dict[str, str]
    logs: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The detail with JSON fields decoded, numbers as numbers and absent fields as None."""
        record = self.record
        out: dict[str, Any] = {"job_id": self.job_id}
        out.update({name: record.get(name) or None for name in TEXT_FIELDS})
        out["function"] = out["function"] or function_of(self.job_id)
        out["root_id"] = out["root_id"] or self.job_id  # a job with no workflow root stores none: its own
        out["attempts"] = int(record.get("attempts") or 0)
        out["progress"] = _number(record.get("progress")) or 0.0
        out["progress_message"] = out["progress_message"] or ""
        out.update({name: _decoded(record.get(name)) for name in JSON_FIELDS})
        out.update({name: _number(record.get(name)) for name in INSTANT_FIELDS})
        out["logs"] = [_decoded(line) for line in self.logs]
        return out


def read_detail(queue: Queue, job_id: str) -> JobDetail | None:
    """The job's detail, or None when it has no record (never submitted, or expired). Both keys
    share the job's hash slot: one pipeline, on Redis Cluster too."""
    pipe = queue.pipeline()
    pipe.hgetall(keys.job(queue.prefix, job_id))
    pipe.lrange(keys.logs(queue.prefix, job_id), 0, -1)
    record, logs = pipe.execute()
    if not record:
        return None
    return JobDetail(job_id, cast(dict[str, str], record), cast(list[str], logs))


def _decoded(text: str | None) -> Any:
    try:
        return loads(text)
    except ValueError:
        return text


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
