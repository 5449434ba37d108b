"""Running one job: its context, hooks and timeout, in a greenlet or a pool process,
ending in the Completion (finish or retry) that the flusher writes.

Greenlet jobs are stopped at their timeout by a hub timer that throws JobTimeout into them, as
``gevent.Timeout`` does (cooperative: a job that hogs the CPU is only stopped when it yields);
process jobs are killed by the pool.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

import structlog
from gevent import get_hub, getcurrent

from upnext.context import JobContext, activate, deactivate
from upnext.errors import JobTimeout, Retry
from upnext.job import dumps, loads, printable
from upnext.runtime.procpool import ChildFailed, ProcessPool
from upnext.store.records import Completion, Delivery
from upnext.task import TaskDef

log = structlog.get_logger("upnext")


class Started(NamedTuple):
    """A delivery that start.lua marked active, with what the job needs to run."""

    delivery: Delivery
    attempt: int
    args: list[Any]
    kwargs: dict[str, Any]
    parent_id: str | None
    root_id: str
    key: str
    checkpoint: Any

    @classmethod
    def from_reply(cls, delivery: Delivery, reply: list[Any]) -> Started:
        if len(reply) < 8:  # Lua ends an array at its first nil: the fields after it are unset
            reply = [*reply, *[None] * (8 - len(reply))]
        _, attempt, args, kwargs, parent_id, root_id, key, checkpoint = reply
        return cls(delivery, int(attempt), loads(args) or [], loads(kwargs) or {}, parent_id or None,
                   root_id or delivery.job_id, key or "", loads(checkpoint))


class _Failure(Exception):
    def __init__(self, error: str, tb: str, reason: str, retryable: bool = True, cause: BaseException | None = None,
                 after: float | None = None, requested: bool = False):
        super().__init__(error)
        self.error, self.tb, self.reason, self.retryable = error, tb, reason, retryable
        self.cause = cause  # what hooks receive; the job's own exception where there is one
        self.after, self.requested = after, requested  # an upnext.Retry's delay, and whether one was raised


class JobRunner:
    """Runs started jobs for one worker process."""

    def __init__(self, queue: Any, hooks: dict[str, Callable[..., Any]], pool: ProcessPool | None,
                 default_executor: str, slot_release: Callable[[], Callable[[], None]] | None = None,
                 worker_id: str = ""):
        self.queue = queue
        self.worker_id = worker_id
        self.hooks = hooks
        self.pre_job, self.post_job = hooks.get("pre_job"), hooks.get("post_job")
        self.pool = pool
        self.default_executor = default_executor
        self.slot_release = slot_release
        # Read once: logging is configured before a worker serves. Skipping the per-job lines
        # when they would be filtered saves binding a logger for every job.
        enabled = getattr(log, "is_enabled_for", lambda level: True)
        self.log_completions, self.log_starts = enabled(logging.INFO), enabled(logging.DEBUG)

    def context_for(self, task: TaskDef, started: Started) -> JobContext:
        ctx = JobContext(job_id=started.delivery.job_id, function=task.name,
                          function_name=getattr(task.fn, "__qualname__", task.name), attempt=started.attempt,
                          max_attempts=task.max_attempts, parent_id=started.parent_id, root_id=started.root_id,
                          last_checkpoint=started.checkpoint, queue=self.queue, release_slot=self.slot_release,
                          worker=self.worker_id, entry_id=started.delivery.entry_id)
        return ctx

    def run(self, task: TaskDef, started: Started, ctx: JobContext) -> Completion:
        began = time.monotonic()
        if self.log_starts:
            ctx.log.debug("job_started")
        hooks = task.hooks
        token = activate(ctx)
        try:
            try:
                if self.pre_job or hooks:  # most jobs have none: skip the lookups
                    self._hook(ctx, self.pre_job, ctx)
                    self._hook(ctx, hooks.get("on_start"), ctx)
                value, result_json = self._call(task, started, ctx)
            except _Failure as failure:
                return self._failed(task, started, ctx, failure, began)
            finally:
                ctx.flush_progress()
            if self.post_job or hooks:
                self._hook(ctx, hooks.get("on_success"), ctx, value)
                self._hook(ctx, self.post_job, ctx, value)
                self._hook(ctx, hooks.get("on_complete"), ctx)
        finally:
            deactivate(token)
        if self.log_completions:
            ctx.log.info("job_completed", duration_ms=_ms(began))
        status = "cancelled" if ctx.is_cancelled else "complete"
        return Completion(started.delivery, status, result=result_json, idem_key=started.key,
                          root_id=started.root_id, run_s=time.monotonic() - began)

    def _call(self, task: TaskDef, started: Started, ctx: JobContext) -> tuple[Any, str]:
        executor = task.executor or self.default_executor
        result_json: str | None = None  # set by a child, which encodes its result itself
        try:
            if executor == "process" and self.pool is not None:
                result_json = self.pool.run(task.name, started, ctx, task.timeout)
                value = loads(result_json)
            else:
                # What gevent.Timeout does, without its Python wrapper (most of a no-op job's run):
                # when the timer fires, the hub throws JobTimeout into this greenlet, which can only
                # be suspended inside the body, since the timer is closed the moment it returns.
                timer = get_hub().loop.timer(task.timeout)
                timer.start(getcurrent().throw, JobTimeout, update=True)
                try:
                    value = task.fn(*started.args, **started.kwargs)
                finally:
                    timer.close()
        except JobTimeout:
            raise _Failure(f"job {ctx.job_id} timed out after {task.timeout}s", "", "timeout") from None
        except ChildFailed as exc:
            raise _Failure(printable(exc.error), printable(exc.tb), exc.reason, exc.retryable, after=exc.after,
                           requested=exc.requested) from None
        except Exception as exc:
            stored, retryable, after = task.judge(exc)
            raise _Failure(printable(f"{type(stored).__name__}: {stored}"), printable(traceback.format_exc()),
                           "exception", retryable, cause=stored, after=after,
                           requested=isinstance(exc, Retry)) from None
        if result_json is None:
            try:
                result_json = dumps(value)
            except (TypeError, ValueError) as exc:
                raise _Failure(f"result of {task.name} (job {ctx.job_id}) is not JSON-serializable: {exc}", "",
                               "exception", retryable=False) from None
        if result_json.isascii() and len(result_json) <= self.queue.max_result_bytes:
            return value, result_json  # the usual case: one byte a character, within the cap
        return value, self._storable(task, ctx, result_json)

    @staticmethod
    def _storable(task: TaskDef, ctx: JobContext, result_json: str) -> str:
        """``result_json`` if Redis may store it, whichever executor made it; else the job fails, not
        retried (the same result would come back)."""
        if not result_json.isascii() and printable(result_json) != result_json:
            raise _Failure(f"result of {task.name} (job {ctx.job_id}) is not valid UTF-8 text (it holds a lone "
                           f"surrogate, e.g. from a file name decoded with surrogateescape): "
                           f"{printable(result_json)[:200]}", "", "exception", retryable=False)
        too_large = ctx.result_over_cap(result_json)
        if too_large:
            raise _Failure(too_large, "", "exception", retryable=False)
        return result_json

    def _failed(self, task: TaskDef, started: Started, ctx: JobContext, failure: _Failure,
                began: float) -> Completion:
        exc = failure.cause or Exception(failure.error)
        run_s = time.monotonic() - began
        self._hook(ctx, "on_job_error", ctx, exc)
        if ctx.is_cancelled:
            return Completion(started.delivery, "cancelled", error="cancelled", failure_reason="cancelled",
                              idem_key=started.key, root_id=started.root_id, run_s=run_s)
        if failure.retryable and started.attempt < task.max_attempts:
            delay_s = task.retry_delay_s(started.attempt) if failure.after is None else failure.after
            self._hook(ctx, task.hooks.get("on_retry"), ctx, exc)
            ctx.log.warning("job_retried", error=failure.error, delay_s=delay_s, duration_ms=_ms(began),
                            **_traceback(failure))
            return Completion(started.delivery, "retry", error=failure.error, traceback=failure.tb,
                              failure_reason=failure.reason, delay_s=delay_s, run_s=run_s)
        if failure.requested:
            failure.error = (f"job {ctx.job_id} ({task.name}) raised upnext.Retry on its last attempt "
                             f"({started.attempt} of {task.max_attempts}, retries={task.retries}): {failure.error}")
        self._hook(ctx, task.hooks.get("on_failure"), ctx, exc)
        self._hook(ctx, task.hooks.get("on_complete"), ctx)
        ctx.log.error("job_failed", error=failure.error, reason=failure.reason, duration_ms=_ms(began),
                      **_traceback(failure))
        return Completion(started.delivery, "failed", error=failure.error, traceback=failure.tb,
                          failure_reason=failure.reason, idem_key=started.key, root_id=started.root_id, run_s=run_s)

    def _hook(self, ctx: JobContext, hook: str | Callable[..., Any] | None, *args: Any) -> None:
        """Run a task or config hook; its exceptions are logged and never change the outcome."""
        fn = self.hooks.get(hook) if isinstance(hook, str) else hook
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:
            ctx.log.warning("hook_failed", hook=getattr(fn, "__name__", repr(fn)), error=repr(exc))


def _traceback(failure: _Failure) -> dict[str, str]:
    """The failure's traceback as the ``exception`` field, which structlog's renderers print as
    they print a logged exception (under the console line; a string in JSON). A timeout or a
    refused result has none."""
    return {"exception": failure.tb} if failure.tb else {}


def _ms(began: float) -> float:
    return round((time.monotonic() - began) * 1000, 2)
