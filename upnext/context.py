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

from upnext.job import dumps, printable

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
    entry_id: str = field(default="", repr=False)  # with ``worker``, the run's fencing token for its writes
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
            message = cut(message, self.queue.max_log_entry_bytes)  # stored in the record: bounded too
            self._annotate(progress=fraction, progress_message=printable(message))
        except Exception as exc:
            self.log.warning("progress_not_written", error=repr(exc))

    def checkpoint(self, state: Any) -> None:
        """Store ``state`` durably; the next attempt finds it in ``ctx.last_checkpoint``.
        A state over max_checkpoint_bytes encoded raises ValueError and stores nothing."""
        encoded = dumps(state)
        cap = getattr(self.queue, "max_checkpoint_bytes", 0)
        size = encoded_bytes(encoded)
        if cap and size > cap:
            raise ValueError(f"checkpoint of job {self.job_id} ({self.function}) is {size} bytes encoded, over "
                             f"max_checkpoint_bytes={cap}; checkpoint a reference (a key, a URL) instead")
        self.last_checkpoint = state
        if self.queue is not None:
            self._annotate(checkpoint=encoded, checkpoint_at=time.time())

    def send_log(self, level: str, message: str, /, **fields: Any) -> None:
        """Store a log line with the job (readable by status tools) and log it here too."""
        entry = {"at": time.time(), "level": level, "message": message, **fields}
        getattr(self.log, level, self.log.info)(message, **fields)
        if self.queue is not None:
            self._annotate(log_entry=printable(bounded_entry(entry, self.queue.max_log_entry_bytes)))

    def _annotate(self, **fields: Any) -> bool:
        return bool(self.queue.annotate(self.job_id, lease=(self.entry_id, self.worker), **fields))

    def result_over_cap(self, result_json: str) -> str | None:
        """Why this job's encoded result may not be stored (over max_result_bytes), or None."""
        cap = getattr(self.queue, "max_result_bytes", 0)
        size = encoded_bytes(result_json)
        if not cap or size <= cap:
            return None
        return (f"result of {self.function} (job {self.job_id}) is {size} bytes encoded, over "
                f"max_result_bytes={cap}; store it elsewhere and return a reference (a key, a URL)")

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


def encoded_bytes(text: str) -> int:
    """Size of ``text`` in UTF-8. A lone surrogate counts as its 3 bytes instead of raising: the
    text-encoding check, not the size check, is the one that fails such a job."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def bounded_entry(entry: dict[str, Any], cap: int) -> str:
    """A send_log entry as JSON of at most ``cap`` bytes. A larger one keeps ``at``, ``level`` and
    the start of its message, loses its other fields, and gets ``truncated``: its full size."""
    encoded = dumps(entry)
    size = encoded_bytes(encoded)
    if size <= cap:
        return encoded
    short = {"at": entry["at"], "level": entry["level"], "message": "", "truncated": size}
    room = cap - encoded_bytes(dumps(short))
    message = str(entry["message"])
    escaped = encoded_bytes(dumps(message)) - 2  # its size inside the JSON, quotes aside
    while message and escaped > room:
        # Shrink in proportion to what escaping costs this text; each step drops at least a character.
        message = cut(message, encoded_bytes(message) * max(room, 0) // escaped)
        escaped = encoded_bytes(dumps(message)) - 2
    short["message"] = message
    return dumps(short)


def cut(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` in UTF-8, never inside a character."""
    if encoded_bytes(text) <= max_bytes:
        return text
    return text.encode("utf-8", "surrogatepass")[:max(max_bytes, 0)].decode("utf-8", "ignore")
