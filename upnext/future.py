"""Future: a handle on one submitted job."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from upnext.context import current_or_none
from upnext.errors import JobNotFound, TaskExecutionError, TaskTimeoutError
from upnext.job import TERMINAL_NAMES, function_of, loads
from upnext.result import TaskResult

if TYPE_CHECKING:
    from upnext.store.queue import Queue


class Future:
    """A submitted job. ``result()`` waits; inside a job, waiting gives the slot back."""

    def __init__(self, job_id: str, queue: Queue):
        function_of(job_id)
        self.job_id = job_id
        self._queue = queue

    def __repr__(self) -> str:
        return f"<Future {self.job_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Future) and other.job_id == self.job_id

    def __hash__(self) -> int:
        return hash(self.job_id)

    def status(self) -> str:
        record = self._queue.get(self.job_id)
        if record is None:
            raise JobNotFound(self.job_id)
        return record["status"]

    def result(self, timeout: float | None = None) -> TaskResult:
        """Wait for the job to end. Raises TaskExecutionError / TaskTimeoutError if it did not
        complete, and the built-in TimeoutError if ``timeout`` seconds pass first. A Redis restart
        or failover is ridden out (see Waiter); redis.ConnectionError only if Redis stays
        unreachable past ``timeout``."""
        ctx = current_or_none()
        with ctx.waiting() if ctx is not None else contextlib.nullcontext():
            record = self._queue.wait(self.job_id, timeout)
        if record is None:
            raise JobNotFound(self.job_id)
        status = record.get("status")
        if status not in TERMINAL_NAMES:
            raise TimeoutError(f"job {self.job_id} did not finish within {timeout}s (status: {status})")
        result = TaskResult.from_record(self.job_id, record)
        if status == "complete":
            return result
        error_class = TaskTimeoutError if result.failure_reason == "timeout" else TaskExecutionError
        raise error_class(self.job_id, status, result.error, result)

    def value(self, timeout: float | None = None) -> Any:
        return self.result(timeout).value

    def cancel(self) -> bool:
        """Cancel the job; True if this call cancelled it, False if it had already ended."""
        outcome, _ = self._queue.cancel(self.job_id)
        if outcome == "missing":
            raise JobNotFound(self.job_id)
        return outcome == "cancelled"

    def progress(self) -> tuple[float, str]:
        """(fraction 0.0..1.0, message) as the job last reported it with ``ctx.set_progress``;
        (0.0, "") before it reported any, and again once it is handed back or retried."""
        status, fraction, message = self._queue.fields(self.job_id, "status", "progress", "progress_message")
        if status is None:
            raise JobNotFound(self.job_id)
        return float(fraction or 0.0), message or ""

    def logs(self) -> list[dict[str, Any]]:
        """The entries the job stored with ``ctx.send_log``, oldest first: each a dict with ``at``
        (unix seconds), ``level``, ``message`` and the fields it was given. The newest
        max_log_entries are kept; they expire with the job."""
        return [loads(line) for line in self._queue.logs(self.job_id)]

    def checkpoint(self) -> Any:
        record = self._queue.get(self.job_id)
        return loads(record.get("checkpoint")) if record else None
