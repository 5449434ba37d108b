"""The job context: what a running job knows about itself and what it can report.

Progress is coalesced (at most one write per 200 ms, the last value always written when
the job ends); checkpoints and logs are written at once. Writes only land while the job is
active, so a late write never touches a finished record. A direct call of a task runs with an
*inline* context: the same API, everything kept in memory, nothing sent to Redis.
"""

from __future__ import annotations

import contextlib
import numbers
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

import structlog

from upnext.job import dumps, loads, new_job_id, printable

PROGRESS_INTERVAL_S = 0.2
INLINE_LOG_ENTRIES = 1000  # what an inline context keeps of its send_log entries (the newest)

_current: ContextVar[JobContext | None] = ContextVar("upnext_job_context", default=None)


# For the worker's per-job path: ``activate(ctx)`` makes ``ctx`` the current context and returns
# the token ``deactivate`` takes to end it (``JobContext.activate`` without a context manager's
# cost, nor a Python call's: these are the ContextVar's own methods).
activate: Callable[[JobContext | None], Token[JobContext | None]] = _current.set
deactivate: Callable[[Token[JobContext | None]], None] = _current.reset


def get_current_context() -> JobContext:
    """The context of the job running in this greenlet (or child process), or of the direct call
    of a task running here (an inline context)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("get_current_context() was called outside a running upnext job")
    return ctx


def current_or_none() -> JobContext | None:
    """The running job that has a record, or None: submits made here become its children and
    waits here give its pool slot back. An inline context is skipped (it has no record to point
    at): a direct call made inside a job belongs to that job."""
    ctx = _current.get()
    while ctx is not None and ctx.inline:
        ctx = ctx.outer
    return ctx


def inline_context(function: str, function_name: str, max_attempts: int) -> JobContext:
    """The context of a direct call: a fresh job id of ``function``, attempt 1. Made inside a
    running job (or another direct call), it is that one's child: parent_id is its id, root_id its
    root, and it is cancelled when that one is."""
    outer = _current.get()
    job_id = new_job_id(function)
    return JobContext(job_id=job_id, function=function, function_name=function_name, attempt=1,
                      max_attempts=max_attempts, parent_id=outer.job_id if outer else None,
                      root_id=outer.root_id if outer else job_id, outer=outer, inline=True)


class _RunState:
    """What a context keeps as its job runs. Class-level defaults, not dataclass fields: a worker
    makes a context for every job, and these are rarely set (a no-op job sets none of them)."""

    _cancelled: bool = False
    _progress: tuple[float, str] | None = None
    _progress_unwritten: bool = False
    _progress_written_at: float = 0.0
    _inline_logs: deque[dict[str, Any]] | None = None  # made by a first inline send_log
    _log: Any = None


@dataclass(eq=False)
class JobContext(_RunState):
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
    release_slot: Callable[[], Any] | None = field(default=None, repr=False)
    worker: str = field(default="", repr=False)
    entry_id: str = field(default="", repr=False)  # with ``worker``, the run's fencing token for its writes
    inline: bool = False  # a direct call's context: kept in memory, nothing written
    outer: JobContext | None = field(default=None, repr=False)  # the context a direct call was made in

    @property
    def is_cancelled(self) -> bool:
        """True once the job was cancelled (for a direct call: once the job it was made in was)."""
        return self._cancelled or (self.outer is not None and self.outer.is_cancelled)

    @is_cancelled.setter
    def is_cancelled(self, value: bool) -> None:
        self._cancelled = value

    @property
    def progress(self) -> tuple[float, str] | None:
        """The last (fraction, message) this context reported with set_progress, or None."""
        return self._progress

    @property
    def inline_logs(self) -> list[dict[str, Any]]:
        """What send_log stored on an inline context (the newest INLINE_LOG_ENTRIES), as
        ``fut.logs()`` would return it for a submitted job; always empty for a submitted job."""
        return list(self._inline_logs or ())

    @property
    def log(self) -> Any:
        """The job's structlog logger, bound on first use (binding costs more than a no-op job)."""
        if self._log is None:
            extra: dict[str, Any] = {"worker": self.worker} if self.worker else {}
            if self.inline:
                extra["inline"] = True
            self._log = structlog.get_logger("upnext.job").bind(
                job_id=self.job_id, function=self.function, attempt=self.attempt, **extra)
        return self._log

    @contextlib.contextmanager
    def activate(self) -> Iterator[JobContext]:
        token = activate(self)
        try:
            yield self
        finally:
            deactivate(token)

    def set_progress(self, current: float, message: str = "", total: float | None = None) -> None:
        """Report progress. With ``total``: current/total (0 <= current <= total). Without it an
        int is a percentage (0..100) and a float a fraction (0.0..1.0); anything outside those is a
        ValueError naming the value. Written at most every 200 ms; the last value when the job ends."""
        self._progress = (progress_fraction(current, total, self.job_id), message)
        self._progress_unwritten = True
        if time.monotonic() - self._progress_written_at >= PROGRESS_INTERVAL_S:
            self.flush_progress()

    def flush_progress(self) -> None:
        """Write the last progress not written yet; best effort: a Redis hiccup never fails the job
        for it."""
        if not self._progress_unwritten or self._progress is None or self.queue is None:
            return
        fraction, message = self._progress
        self._progress_unwritten = False
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
        elif self.inline:
            if self._inline_logs is None:
                self._inline_logs = deque(maxlen=INLINE_LOG_ENTRIES)
            self._inline_logs.append(loads(dumps(entry)))  # as a worker would store it: JSON or TypeError

    def _annotate(self, **fields: Any) -> bool:
        return bool(self.queue.annotate(self.job_id, lease=(self.entry_id, self.worker), **fields))

    def result_over_cap(self, result_json: str) -> str | None:
        """Why this job's encoded result may not be stored (over max_result_bytes), or None."""
        cap = getattr(self.queue, "max_result_bytes", 0)
        if not cap or len(result_json) * 4 <= cap:  # no code point takes more than 4 bytes
            return None
        size = encoded_bytes(result_json)
        if size <= cap:
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


def progress_fraction(current: Any, total: Any, job_id: str) -> float:
    """What ``set_progress(current, total=total)`` stores: a fraction 0.0..1.0. Ints are
    percentages so that 0, 1, 2, 3 never reads as 0 %, 100 %, 2 %, 3 %."""
    _check_number("current", current, job_id)
    if total is not None:
        _check_number("total", total, job_id)
        if not total > 0 or not 0 <= current <= total:
            raise ValueError(f"progress of job {job_id} must be within 0..total (total > 0), "
                             f"got {current!r} of total={total!r}")
        return float(current / total)
    if isinstance(current, numbers.Integral):
        if not 0 <= int(current) <= 100:
            raise ValueError(f"progress of job {job_id}: an int is a percentage within 0..100, got {current!r}")
        return int(current) / 100
    if not 0.0 <= current <= 1.0:
        raise ValueError(f"progress of job {job_id}: a float is a fraction within 0.0..1.0, got {current!r} "
                         "(for a percentage pass an int; or pass set_progress(done, total=count))")
    return float(current)


def _check_number(name: str, value: Any, job_id: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"set_progress() of job {job_id}: {name} must be a number, got {value!r}")


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
