"""Every exception upnext raises on purpose, each with a one-line reason to exist.

Waiting on a job raises the built-in ``TimeoutError`` when the *waiter's* own timeout
passes; the classes here describe the job itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from upnext.result import TaskResult


class UpnextError(Exception):
    """Base class of the errors below."""


class ConfigError(UpnextError, ValueError):
    """A setting, argument or config file is invalid; the message names it."""


class TaskExecutionError(UpnextError, RuntimeError):
    """The job ended failed or cancelled; carries its id, status, error and result record.
    Also a RuntimeError, as upstream's is: code that catches it that way keeps working."""

    def __init__(self, job_id: str, status: str, error: str | None, task_result: TaskResult | Any = None):
        self.job_id = job_id
        self.status = status
        self.error = error
        self.task_result = task_result
        super().__init__(f"job {job_id} {status}: {error}")


class TaskTimeoutError(TaskExecutionError):
    """The job ran longer than its own ``timeout`` and was stopped."""


class QueueFull(UpnextError):
    """A task's queue holds ``max_queued`` jobs: the submit was refused (or waited in vain)."""

    def __init__(self, function: str, limit: int, count: int, adding: int = 1, waited_s: float | None = None):
        self.function, self.limit, self.count, self.adding = function, limit, count, adding
        if adding > limit:
            why = f"a batch of {adding} jobs can never fit under max_queued={limit}"
        else:
            why = f"{count} jobs queued (waiting in its stream + scheduled), max_queued={limit}"
            if waited_s is not None:
                why += f"; still full after waiting {waited_s:g}s (on_full='block', on_full_timeout)"
        super().__init__(f"queue of task {function!r} is full: {why}; submit later or raise max_queued")


class JobNotFound(UpnextError, LookupError):
    """No record exists for this job id (never submitted, or expired after its TTL)."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r} (never submitted, or expired after job_ttl_seconds)")


class JobTimeout(BaseException):
    """Raised inside a running job when its timeout fires; BaseException so `except Exception` can't swallow it."""


class Permanent(UpnextError):
    """Raise ``Permanent(exc)`` from a job to fail it at once, whatever its retries; the job's
    stored error is ``exc``'s, not this wrapper's."""

    def __init__(self, exc: BaseException):
        if not isinstance(exc, BaseException):
            raise TypeError(f"Permanent() wraps an exception instance, got {exc!r}")
        self.exc = exc
        super().__init__(f"{type(exc).__name__}: {exc}")


class Retry(UpnextError):
    """Raise ``Retry(after=30)`` from a job to run it again in ``after`` seconds, whatever its
    backoff (a server's Retry-After, say); ``after=None`` uses the backoff. It counts as an
    attempt: a job that has used its last one fails, saying it asked for a retry."""

    def __init__(self, after: float | None = None, reason: str = ""):
        if after is not None and (isinstance(after, bool) or not isinstance(after, (int, float)) or not after >= 0):
            raise ValueError(f"Retry(after=...) must be a number of seconds >= 0 or None, got {after!r}")
        self.after = None if after is None else float(after)
        self.reason = reason
        super().__init__(f"retry requested{f' in {self.after}s' if after is not None else ''}"
                         f"{f': {reason}' if reason else ''}")
