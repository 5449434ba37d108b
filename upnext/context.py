"""The job context: what a running job knows about itself and what it can report.

Progress is coalesced (at most one write per 200 ms, the last value always written when
the job ends); checkpoints and logs are written at once. Writes only land while the job is
active, so a late write never touches a finished record.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import structlog

from upnext.job import dumps

PROGRESS_INTERVAL_S = 0.2

_current: ContextVar[JobContext | None] = ContextVar("upnext_job_context", default=None)


def get_current_context() -> JobContext:
    """The context of the job running in this greenlet (or child process)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("get_current_context() was called outside a running upnext job")
    return ctx


def current_or_none() -> JobContext | None:
    return _current.get()


@dataclass(eq=False)
class JobContext:
    """One attempt of one job, as seen from inside it."""

    job_id: str
    function: str
    function_name: str
    attempt: int
    max_attempts: int
    parent_id: str | None
    root_id: str
    last_checkpoint: Any = None
    queue: Any = field(default=None, repr=False)
    is_cancelled: bool = False
    release_slot: Callable[[], Any] | None = field(default=None, repr=False)
    worker: str = field(default="", repr=False)
    _pending_progress: tuple[float, str] | None = field(default=None, repr=False)
    _progress_written_at: float = field(default=0.0, repr=False)
    _log: Any = field(default=None, repr=False)

    @property
    def log(self) -> Any:
        """The job's structlog logger, bound on first use (binding costs more than a no-op job)."""
        if self._log is None:
            extra = {"worker": self.worker} if self.worker else {}
            self._log = structlog.get_logger("upnext.job").bind(
                job_id=self.job_id, function=self.function, attempt=self.attempt, **extra)
        return self._log

    @contextlib.contextmanager
    def activate(self) -> Iterator[JobContext]:
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def set_progress(self, value: float, message: str = "") -> None:
        """Report progress: 0..100, or 0.0..1.0 read as a fraction."""
        if not 0 <= value <= 100:
            raise ValueError(f"progress of job {self.job_id} must be within 0..100 (or 0.0..1.0), got {value!r}")
        fraction = value if value <= 1 else value / 100
        self._pending_progress = (fraction, message)
        if time.monotonic() - self._progress_written_at >= PROGRESS_INTERVAL_S:
            self.flush_progress()

    def flush_progress(self) -> None:
        """Write the pending progress; best effort: a Redis hiccup never fails the job for it."""
        if self._pending_progress is None or self.queue is None:
            return
        fraction, message = self._pending_progress
        self._pending_progress = None
        self._progress_written_at = time.monotonic()
        try:
            self.queue.annotate(self.job_id, progress=fraction, progress_message=message)
        except Exception as exc:
            self.log.warning("progress_not_written", error=repr(exc))

    def checkpoint(self, state: Any) -> None:
        """Store ``state`` durably; the next attempt finds it in ``ctx.last_checkpoint``."""
        encoded = dumps(state)
        self.last_checkpoint = state
        if self.queue is not None:
            self.queue.annotate(self.job_id, checkpoint=encoded, checkpoint_at=time.time())

    def send_log(self, level: str, message: str, /, **fields: Any) -> None:
        """Store a log line with the job (readable by status tools) and log it here too."""
        entry = {"at": time.time(), "level": level, "message": message, **fields}
        getattr(self.log, level, self.log.info)(message, **fields)
        if self.queue is not None:
            self.queue.annotate(self.job_id, log_entry=dumps(entry))

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Give this job's pool slot back while it blocks on another job (no nested deadlock)."""
        if self.release_slot is None:
            yield
            return
        reacquire = self.release_slot()
        try:
            yield
        finally:
            reacquire()
