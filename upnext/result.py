"""TaskResult: the outcome of one job, read from its record (a leaf: errors and futures use it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from upnext.job import function_of, loads


@dataclass(frozen=True)
class TaskResult:
    """The record of a job that ended (or the last state seen of one that did not)."""

    value: Any
    job_id: str
    function: str
    function_name: str
    status: str
    ok: bool
    started_at: datetime | None
    completed_at: datetime | None
    attempts: int
    parent_id: str | None
    root_id: str | None
    error: str | None = None
    failure_reason: str | None = None

    @classmethod
    def from_record(cls, job_id: str, record: dict[str, str]) -> TaskResult:
        status = record.get("status", "")
        return cls(
            value=loads(record.get("result")) if status == "complete" else None,
            job_id=job_id, function=function_of(job_id), function_name=function_of(job_id),
            status=status, ok=status == "complete",
            started_at=_instant(record.get("started_at")), completed_at=_instant(record.get("completed_at")),
            attempts=int(record.get("attempts") or 0),
            parent_id=record.get("parent_id") or None, root_id=record.get("root_id") or job_id,
            error=record.get("error") or None, failure_reason=record.get("failure_reason") or None)


def _instant(text: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(text), tz=UTC) if text else None
