"""Task definitions (validated when decorated) and the handle ``@worker.task`` returns."""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from upnext.context import current_or_none, inline_context
from upnext.errors import ConfigError, Permanent, Retry
from upnext.future import Future
from upnext.job import Priority, check_function_name, encode_call, new_job_id
from upnext.result import TaskResult
from upnext.store.limits import NO_LIMITS, Limits
from upnext.store.records import NO_BOUND, ON_FULL, NewJob, QueueBound

if TYPE_CHECKING:
    from upnext.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")

EXECUTORS = ("thread", "process")
HOOK_NAMES = ("on_start", "on_success", "on_failure", "on_retry", "on_complete")
ON_OPTIONS = ("on_full", "on_full_timeout")  # options, not hooks, despite their names
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class TaskDef:
    """A registered function and its options; checked once, at decoration."""

    name: str
    fn: Callable[..., Any]
    retries: int = 0
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    timeout: float = 1800.0
    executor: str | None = None
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    kind: str = "task"
    rate_limit: str | None = None
    max_concurrency: int | None = None
    routing_group: str | None = None
    group_max_concurrency: int | None = None
    hide_args: bool = False  # views (show, jobs, the dashboard) print its arguments and result as hidden
    retry_on: tuple[type[BaseException], ...] | None = None  # None: every exception is retried
    no_retry_on: tuple[type[BaseException], ...] = ()
    retry_jitter: bool = True  # full jitter (AWS backoff study): failing jobs spread their retries
    retry_max_delay: float | None = None
    expires: float | None = None  # seconds from submit: a job not started by then ends cancelled ("expired")
    max_queued: int | None = None  # back-pressure: jobs waiting (stream + scheduled) beyond which submits fail
    on_full: str = "reject"  # or "block": poll for room up to on_full_timeout seconds
    on_full_timeout: float = 30.0
    limits: Limits = field(init=False, default=NO_LIMITS)

    def __post_init__(self) -> None:
        where = f"task {self.name!r}"
        if inspect.iscoroutinefunction(self.fn) or inspect.isasyncgenfunction(self.fn):
            raise TypeError(f"{where}: async def functions are not supported; upnext runs plain functions "
                            "on gevent (use blocking calls, they yield to the hub)")
        check_function_name(self.name)
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"{where}: retries must be an integer >= 0, got {self.retries!r}")
        for option in ("retry_delay", "retry_backoff", "timeout"):
            value = getattr(self, option)
            if not isinstance(value, (int, float)) or value < 0 or (option == "timeout" and value == 0):
                raise ValueError(f"{where}: {option} must be a number {'> 0' if option == 'timeout' else '>= 0'}, "
                                 f"got {value!r}")
        for flag in ("hide_args", "retry_jitter"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{where}: {flag} must be True or False, got {getattr(self, flag)!r}")
        if self.retry_max_delay is not None and (isinstance(self.retry_max_delay, bool) or not isinstance(
                self.retry_max_delay, (int, float)) or not self.retry_max_delay >= 0):
            raise ValueError(f"{where}: retry_max_delay must be a number >= 0 or None, got {self.retry_max_delay!r}")
        self._check_retry_classes(where)
        if self.expires is not None:
            check_expires_s(self.expires, where)
        self._check_bound(where)
        if self.executor not in (None, *EXECUTORS):
            raise ValueError(f"{where}: executor must be None, 'thread' or 'process', got {self.executor!r}")
        for hook_name, hook in self.hooks.items():
            if not callable(hook):
                raise TypeError(f"{where}: {hook_name} must be callable, got {hook!r}")
        try:
            object.__setattr__(self, "limits", Limits.of(self.rate_limit, self.max_concurrency, self.routing_group,
                                                         self.group_max_concurrency))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    @property
    def bound(self) -> QueueBound:
        if self.max_queued is None:
            return NO_BOUND
        return QueueBound(self.max_queued, self.on_full, float(self.on_full_timeout))

    def _check_bound(self, where: str) -> None:
        if self.max_queued is not None and (isinstance(self.max_queued, bool) or not isinstance(self.max_queued, int)
                                            or self.max_queued < 1):
            raise ValueError(f"{where}: max_queued must be an integer >= 1 or None, got {self.max_queued!r}")
        if self.on_full not in ON_FULL:
            raise ValueError(f"{where}: on_full must be one of {', '.join(map(repr, ON_FULL))}, got {self.on_full!r}")
        if isinstance(self.on_full_timeout, bool) or not isinstance(self.on_full_timeout, (int, float)) or not (
                self.on_full_timeout >= 0):
            raise ValueError(f"{where}: on_full_timeout must be a number of seconds >= 0, got {self.on_full_timeout!r}")

    def _check_retry_classes(self, where: str) -> None:
        """retry_on and no_retry_on are tuples of exception classes; no class is in both (one in
        retry_on under a no_retry_on class could never be retried). A no_retry_on class under a
        retry_on one is the way to carve out an exception: no_retry_on wins."""
        for option in ("retry_on", "no_retry_on"):
            value = getattr(self, option)
            if value is None and option == "retry_on":
                continue
            if not isinstance(value, tuple) or not all(isinstance(c, type) and issubclass(c, BaseException)
                                                       for c in value):
                raise TypeError(f"{where}: {option} must be a tuple of exception classes, "
                                f"e.g. (TimeoutError, ConnectionError), got {value!r}")
        for cls in self.retry_on or ():
            covered = [c.__name__ for c in self.no_retry_on if issubclass(cls, c)]
            if covered:
                raise ConfigError(f"{where}: retry_on names {cls.__name__}, which no_retry_on excludes through "
                                  f"{', '.join(covered)}; it could never be retried: remove it from one of them")

    def judge(self, exc: BaseException) -> tuple[BaseException, bool, float | None]:
        """What a failed attempt's exception means: the exception to store (a Permanent's wrapped
        one), whether the job may be retried, and the delay a Retry asked for (None: the backoff)."""
        if isinstance(exc, Retry):
            return exc, True, exc.after
        if isinstance(exc, Permanent):
            return exc.exc, False, None
        if getattr(exc, "retryable", True) is False or isinstance(exc, self.no_retry_on):
            return exc, False, None
        return exc, self.retry_on is None or isinstance(exc, self.retry_on), None

    def retry_delay_s(self, attempt: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Wait before the retry that follows failed attempt ``attempt`` (1-based): the backoff,
        capped at retry_max_delay, then with full jitter a uniform draw between 0 and that."""
        try:
            backoff = self.retry_delay * self.retry_backoff ** (attempt - 1)
        except OverflowError:
            backoff = float("inf")
        if self.retry_max_delay is not None:
            backoff = min(backoff, self.retry_max_delay)
        return uniform(0.0, backoff) if self.retry_jitter else backoff

    def options_dict(self) -> dict[str, Any]:
        return {"retries": self.retries, "retry_delay": self.retry_delay, "retry_backoff": self.retry_backoff,
                "timeout": self.timeout, "executor": self.executor, "kind": self.kind,
                "rate_limit": self.rate_limit, "max_concurrency": self.max_concurrency,
                "routing_group": self.routing_group, "group_max_concurrency": self.group_max_concurrency,
                "hide_args": self.hide_args, "retry_on": _class_names(self.retry_on),
                "no_retry_on": _class_names(self.no_retry_on), "retry_jitter": self.retry_jitter,
                "retry_max_delay": self.retry_max_delay, "expires": self.expires, "max_queued": self.max_queued,
                "on_full": self.on_full, "on_full_timeout": self.on_full_timeout}


def _class_names(classes: tuple[type[BaseException], ...] | None) -> list[str] | None:
    """Exception classes as the views print them (the registry in Redis holds JSON)."""
    return None if classes is None else [f"{c.__module__}.{c.__qualname__}" for c in classes]


class TaskHandle(Generic[P, R]):
    """What ``@worker.task`` returns: call it directly, or submit it as a job.

    The methods' own leading parameters (``self``, ``key``) are positional-only, so a task may
    name its parameters anything; ``wait``'s ``wait_timeout`` is keyword-only (a task parameter of
    that name is passed positionally, or use ``submit(...).result(timeout)``)."""

    def __init__(self, worker: Worker, definition: TaskDef):
        self.worker = worker
        self.definition = definition
        self.name = definition.name
        self.__wrapped__ = definition.fn
        self.__doc__ = definition.fn.__doc__

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def __call__(self, /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, with an inline job context (nothing goes to Redis), so
        task code and its plain unit tests need no worker."""
        task = self.definition
        with inline_context(task.name, getattr(task.fn, "__qualname__", task.name), task.max_attempts).activate():
            # TaskDef keeps fn as Callable[..., Any]; P and R were taken from that same function
            return cast(R, task.fn(*args, **kwargs))

    def options(self, *, delay: float | None = None, eta: datetime | None = None,
                expires: float | datetime | None = None, priority: Priority | str = Priority.NORMAL) -> SubmitOptions:
        """Per-submit options: ``delay`` seconds or an ``eta`` to run no earlier than; ``expires``
        (seconds from submit, or an aware datetime): not started by then, the job never runs and
        ends cancelled with failure_reason ``expired`` (default: the task's ``expires``);
        ``priority`` "high", "normal" or "low" (``upnext.Priority``): strictly, high before normal
        before low, FIFO within a level."""
        delay_s = _delay_s(delay, eta)
        return SubmitOptions(self, delay_s, _expires_s(self.definition, expires, delay_s),
                             _priority(self.name, priority))

    def submit(self, /, *args: P.args, **kwargs: P.kwargs) -> Future:
        return self.options().submit(*args, **kwargs)

    def submit_idempotent(self, key: str, /, *args: Any, **kwargs: Any) -> Future:
        return self.options().submit_idempotent(key, *args, **kwargs)

    def submit_on_commit(self, /, *args: P.args, **kwargs: P.kwargs) -> Future:
        """Django: submit when the current transaction commits, and never if it rolls back.
        The call is checked (signature, JSON) now, so a bad call fails in the view. The job id is
        chosen now: the Future's ``status()`` raises JobNotFound until the commit, and for good
        after a rollback."""
        from django.db import transaction

        new = self.new_job(args, kwargs)
        transaction.on_commit(lambda: self.worker.queue.enqueue(new))
        return Future(new.job_id, self.worker.queue)

    def wait(self, /, *args: Any, wait_timeout: float | None = None, **kwargs: Any) -> TaskResult:
        """Submit and wait; the wait defaults to the task's own timeout."""
        return self.options().wait(*args, wait_timeout=wait_timeout, **kwargs)

    def wait_idempotent(self, key: str, /, *args: Any, wait_timeout: float | None = None, **kwargs: Any) -> TaskResult:
        return self.submit_idempotent(key, *args, **kwargs).result(self._wait_s(wait_timeout))

    def _wait_s(self, wait_timeout: float | None) -> float:
        return self.definition.timeout if wait_timeout is None else wait_timeout

    def pause(self) -> bool:
        """Stop workers starting this task's jobs, within about a second: running ones finish,
        queued ones wait and submits are still accepted; a paused cron keeps its schedule. False
        when it was paused already."""
        return self.worker.queue.pauses.pause(self.name)

    def resume(self) -> bool:
        """Start this task's jobs again (a cron's instants missed meanwhile follow its
        missed_run_policy). False when it was not paused."""
        return self.worker.queue.pauses.resume(self.name)

    def is_paused(self) -> bool:
        return self.worker.queue.pauses.is_paused(self.name)

    # Upstream's names for its blocking variants; every call here blocks (yielding under gevent).
    submit_sync = submit
    submit_idempotent_sync = submit_idempotent
    wait_sync = wait
    wait_idempotent_sync = wait_idempotent

    def new_job(self, args: tuple[Any, ...], kwargs: dict[str, Any], delay_s: float = 0.0, key: str = "",
                expires_s: float | None = None, priority: str = Priority.NORMAL) -> NewJob:
        """Validate a call and build its record; nothing is written. ``expires_s`` None: the task's."""
        args_json, kwargs_json = encode_call(self.definition.fn, self.name, args, kwargs)
        if expires_s is None:
            expires_s = _expires_s(self.definition, None, delay_s)
        new = build_job(self.name, args_json, kwargs_json, delay_s, key, expires_s, self.definition.bound)
        new.priority = priority
        return new


def build_job(function: str, args_json: str, kwargs_json: str, delay_s: float = 0.0, key: str = "",
              expires_s: float = 0.0, bound: QueueBound | None = None) -> NewJob:
    """A job record with its lineage: submitted from inside a job, it becomes that job's child."""
    parent = current_or_none()
    return NewJob(job_id=new_job_id(function), args=args_json, kwargs=kwargs_json, delay_s=delay_s, key=key,
                  parent_id=parent.job_id if parent else "", root_id=parent.root_id if parent else "",
                  expires_s=expires_s, bound=bound)


@dataclass(frozen=True)
class SubmitOptions:
    """A task with per-submit options (``task.options(delay=30).submit(...)``)."""

    handle: TaskHandle[..., Any]
    delay_s: float
    expires_s: float = 0.0  # 0: never expires
    priority: str = Priority.NORMAL

    def submit(self, /, *args: Any, **kwargs: Any) -> Future:
        queue = self.handle.worker.queue
        new = self.handle.new_job(args, kwargs, self.delay_s, expires_s=self.expires_s, priority=self.priority)
        return Future(queue.enqueue(new), queue)

    def submit_idempotent(self, key: str, /, *args: Any, **kwargs: Any) -> Future:
        """Submit unless a live job holds ``key``; then return that job's Future."""
        queue = self.handle.worker.queue
        new = self.handle.new_job(args, kwargs, self.delay_s, check_key(key), self.expires_s, self.priority)
        return Future(queue.enqueue(new), queue)

    def wait(self, /, *args: Any, wait_timeout: float | None = None, **kwargs: Any) -> TaskResult:
        queue = self.handle.worker.queue
        new = self.handle.new_job(args, kwargs, self.delay_s, expires_s=self.expires_s, priority=self.priority)
        future = Future(queue.enqueue(new, watch=True), queue)
        return future.result(self.handle._wait_s(wait_timeout))

    submit_sync = submit  # upstream's names (see TaskHandle)
    submit_idempotent_sync = submit_idempotent
    wait_sync = wait


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key.strip()) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency key must be a non-empty string of at most {MAX_KEY_LENGTH} characters, "
                         f"got {key!r}")
    return key.strip()


def _delay_s(delay: float | None, eta: datetime | None) -> float:
    if delay is not None and eta is not None:
        raise ValueError("options(): give delay or eta, not both")
    if eta is not None:
        if not isinstance(eta, datetime) or eta.tzinfo is None:
            raise ValueError(f"options(): eta must be a timezone-aware datetime, got {eta!r}")
        return max(0.0, eta.timestamp() - time.time())
    if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
        raise ValueError(f"options(): delay must be a number of seconds >= 0, got {delay!r}")
    return float(delay or 0.0)


def check_expires_s(expires: Any, where: str) -> float:
    """``expires`` as seconds (a number > 0), else ValueError naming ``where``."""
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) or not expires > 0:
        raise ValueError(f"{where}: expires must be a number of seconds > 0 (or, per submit, a timezone-aware "
                         f"datetime), got {expires!r}")
    return float(expires)


def _expires_s(task: TaskDef, expires: float | datetime | None, delay_s: float) -> float:
    """Seconds from now until the job expires (0: never): ``expires`` or the task's. A job that
    would become due at or after its expiry could never start: refused here, before any write."""
    where = f"{task.name}.options()"
    if expires is None:
        expires_s = task.expires or 0.0
    elif isinstance(expires, datetime):
        if expires.tzinfo is None:
            raise ValueError(f"{where}: expires must be a timezone-aware datetime or seconds, got {expires!r}")
        expires_s = expires.timestamp() - time.time()
        if expires_s <= 0:
            raise ValueError(f"{where}: expires={expires.isoformat()} is in the past")
    else:
        expires_s = check_expires_s(expires, where)
    if expires_s and delay_s >= expires_s:
        raise ValueError(f"{where}: the job would be due in {delay_s:g}s (delay/eta) but expires in {expires_s:g}s: "
                         f"it could never start; give a later expires or an earlier run time")
    return expires_s


def _priority(task: str, priority: Priority | str) -> str:
    try:
        return Priority(priority).value
    except ValueError:
        raise ValueError(f"{task}.options(): priority must be one of {', '.join(repr(p.value) for p in Priority)} "
                         f"(or upnext.Priority.HIGH, ...), got {priority!r}") from None
