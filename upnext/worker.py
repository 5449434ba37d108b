"""Worker: the registry of tasks and the decorators that fill it.

A Worker is imported by web processes (to submit) and by worker processes (to run).
Submitting needs only the Redis URL; ``serve`` (called by the CLI or ``upnext.run``)
starts the runtime. No raw Redis commands here.
"""

from __future__ import annotations

import copy
import difflib
import enum
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any, TypeVar, cast

from upnext import config
from upnext.cron import CronDef, MissedRunPolicy, Schedule
from upnext.errors import ConfigError
from upnext.events import Event
from upnext.future import Future
from upnext.job import check_function_name, encode_call
from upnext.store.connection import connect
from upnext.store.crons import RuntimeCrons
from upnext.store.queue import Queue
from upnext.task import HOOK_NAMES, ON_OPTIONS, TaskDef, TaskHandle

H = TypeVar("H", bound=TaskHandle[..., Any])


class SyncExecutor(enum.StrEnum):
    """Where a task's plain function runs: THREAD = the greenlet pool, PROCESS = the process pool."""

    THREAD = "thread"
    PROCESS = "process"


class Worker:
    """A named set of tasks plus the settings of the processes that run them."""

    def __init__(self, name: str | None = None, concurrency: int | None = None,
                 sync_executor: SyncExecutor | str | None = None, redis_url: str | None = None,
                 queue_config: config.WorkerQueueConfig | None = None, **settings: Any):
        given = {"name": name, "concurrency": concurrency, "redis_url": redis_url,
                 "sync_executor": SyncExecutor(sync_executor).value if sync_executor is not None else None,
                 **(queue_config.given() if queue_config else {}), **settings}
        self._args = config.parse_values({k: v for k, v in given.items() if v is not None}, "Worker(...)")
        self.name = name
        self.tasks: dict[str, TaskDef] = {}
        self.crons: dict[str, CronDef] = {}
        self.events: dict[str, Event] = {}
        self.import_path: str | None = None
        self._settings: dict[str, Any] | None = None
        self._queue: Queue | None = None
        self._module = sys._getframe(1).f_globals.get("__name__")

    def __repr__(self) -> str:
        return f"<Worker {self.name or '(unnamed)'} tasks={sorted(self.tasks)}>"

    # -- registry ------------------------------------------------------------------------
    def task(self, fn: Callable[..., Any] | None = None, *, name: str | None = None, retries: int = 0,
             retry_delay: float = 1.0, retry_backoff: float = 2.0, timeout: float = 1800.0,
             rate_limit: str | None = None, max_concurrency: int | None = None, executor: str | None = None,
             routing_group: str | None = None, group_max_concurrency: int | None = None, hide_args: bool = False,
             retry_on: tuple[type[BaseException], ...] | None = None, no_retry_on: tuple[type[BaseException], ...] = (),
             retry_jitter: bool = True, retry_max_delay: float | None = None, expires: float | None = None,
             max_queued: int | None = None, on_full: str = "reject", on_full_timeout: float = 30.0,
             **hooks: Callable[..., Any]) -> Any:
        """Register a plain function as a task: ``@worker.task`` or ``@worker.task(retries=3, ...)``.

        ``rate_limit`` ("10/s", "100/minute", "5/10s", ...), ``max_concurrency`` and the
        ``group_max_concurrency`` shared by every task (and event handler) of ``routing_group``
        hold across every worker process of the cluster. ``hide_args=True`` keeps its arguments and
        result out of every view (``show``, ``jobs``, the dashboard): they print as hidden.

        Only exceptions of ``retry_on`` classes are retried (default: every one), never those of
        ``no_retry_on``; the wait is ``retry_delay * retry_backoff**(n-1)`` capped at
        ``retry_max_delay``, and with ``retry_jitter`` (the default) a random wait between 0 and that.
        ``expires`` (seconds from submit): a job not started by then never runs; it ends cancelled.
        ``max_queued``: a submit that would leave more jobs waiting (stream + scheduled) raises
        QueueFull (``on_full="reject"``) or polls for room up to ``on_full_timeout`` s ("block")."""
        options = dict(name=name, retries=retries, retry_delay=retry_delay, retry_backoff=retry_backoff,
                       timeout=timeout, rate_limit=rate_limit, max_concurrency=max_concurrency, executor=executor,
                       routing_group=routing_group, group_max_concurrency=group_max_concurrency, hide_args=hide_args,
                       retry_on=retry_on, no_retry_on=no_retry_on, retry_jitter=retry_jitter,
                       retry_max_delay=retry_max_delay, expires=expires, max_queued=max_queued, on_full=on_full,
                       on_full_timeout=on_full_timeout, **hooks)
        return self._decorator(fn, options, TaskHandle)

    def cron(self, schedule: str, *, name: str | None = None, timeout: float = 1800.0,
             missed_run_policy: MissedRunPolicy | str = MissedRunPolicy.LATEST_ONLY,
             max_catch_up_seconds: float | None = None, executor: str | None = None, tz: str | None = None,
             retries: int = 0, retry_delay: float = 1.0, max_concurrency: int | None = None, overlap: bool = True,
             args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> Callable[..., Any]:
        """Run a function at each instant of ``schedule`` (5 fields, or 6 with seconds first, read in
        time zone ``tz``; default UTC), exactly once per instant across every worker, called with
        ``args`` and ``kwargs``. A run that fails is retried ``retries`` times; ``overlap=False``
        skips an instant while the previous run has not ended (logged, and counted in the cron's
        cursor hash, which ``cron list`` shows)."""
        Schedule(schedule)  # a bad expression fails here, before the decorated function is known
        policy = MissedRunPolicy(missed_run_policy)

        def register(fn: Callable[..., Any]) -> TaskHandle[..., Any]:
            where = f"cron {name or fn.__name__!r}"
            definition = cron_def(where, fn, schedule, tz, args, kwargs or {},
                                  policy=policy, max_catch_up_s=max_catch_up_seconds, overlap=overlap)
            handle = self._register(fn, dict(name=name, timeout=timeout, executor=executor, retries=retries,
                                             retry_delay=retry_delay, max_concurrency=max_concurrency),
                                    TaskHandle, "cron")
            self.crons[handle.name] = replace(definition, function=handle.name)
            return handle
        return register

    def event(self, name: str) -> Event:
        """The event called ``name``; ``@event.on`` registers handlers, ``event.send(**data)`` fans out."""
        if name not in self.events:
            self.events[name] = Event(self, name)
        return self.events[name]

    def _decorator(self, fn: Callable[..., Any] | None, options: dict[str, Any], handle_class: type[H],
                   kind: str = "task") -> Any:
        def register(func: Callable[..., Any]) -> Any:
            return self._register(func, options, handle_class, kind)
        return register(fn) if fn is not None else register

    def _register(self, fn: Callable[..., Any], options: dict[str, Any], handle_class: type[H], kind: str) -> H:
        options = {k: v for k, v in options.items() if v is not None}
        name = options.pop("name", None) or fn.__name__
        hooks = {k: options.pop(k) for k in list(options) if k.startswith("on_") and k not in ON_OPTIONS}
        unknown = set(hooks) - set(HOOK_NAMES)
        if unknown:
            raise TypeError(f"{kind} {name!r}: unexpected option(s): {', '.join(sorted(unknown))}")
        definition = TaskDef(name=name, fn=fn, hooks=hooks, kind=kind, **options)
        if definition.name in self.tasks:
            raise ValueError(f"task name {definition.name!r} is already registered on {self!r}; "
                             "pass name=... to tell them apart")
        self._check_group(definition)
        self.tasks[definition.name] = definition
        return handle_class(self, definition)

    def _check_group(self, definition: TaskDef) -> None:
        """Every task of a routing group states the same group_max_concurrency: one cap, one value."""
        group, cap = definition.limits.group, definition.group_max_concurrency
        for other in self.tasks.values():
            if group and other.limits.group == group and other.group_max_concurrency != cap:
                raise ConfigError(
                    f"routing_group {group!r}: {definition.kind} {definition.name!r} has group_max_concurrency="
                    f"{definition.group_max_concurrency!r} but {other.kind} {other.name!r} has "
                    f"{other.group_max_concurrency!r}; give every function of the group the same cap")

    def subset(self, only: Sequence[str] = (), exclude: Sequence[str] = ()) -> Worker:
        """This worker serving some of its functions (``--only`` / ``--exclude``): a copy holding
        the tasks and crons selected. Event handlers stay registered for every handler the app
        declares, so an event sent while no worker serves one of them waits in its queue."""
        if not only and not exclude:
            return self
        for setting, names in (("only", only), ("exclude", exclude)):
            unknown = [name for name in names if name not in self.tasks]
            if unknown:
                close = difflib.get_close_matches(unknown[0], list(self.tasks), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{setting}: {self!r} has no function named {unknown[0]!r}{hint}; "
                                  f"its functions: {', '.join(sorted(self.tasks))}")
        keep = [name for name in self.tasks if (not only or name in only) and name not in exclude]
        if not keep:
            raise ConfigError(f"only={list(only)} and exclude={list(exclude)} leave none of {self!r}'s "
                              "functions to serve")
        view = copy.copy(self)
        view.tasks = {name: self.tasks[name] for name in keep}
        view.crons = {name: plan for name, plan in self.crons.items() if name in view.tasks}
        return view

    # -- settings and connection ---------------------------------------------------------
    def worker_args(self) -> dict[str, Any]:
        """The settings given to Worker(...), for config.resolve(worker=...)."""
        return dict(self._args)

    def configure(self, values: dict[str, Any]) -> None:
        """Use these resolved settings (the CLI's) instead of Worker(...) args + env."""
        self._settings = dict(values)
        self._queue = None

    @property
    def settings(self) -> dict[str, Any]:
        if self._settings is None:
            self._settings = dict(config.resolve(worker=self._args, env=config.from_env()).values)
        return self._settings

    @property
    def queue(self) -> Queue:
        """The job queue on this worker's Redis, made on first use (submitters need nothing else)."""
        if self._queue is None:
            s = self.settings
            queue = Queue(connect(s["redis_url"]), s["prefix"], job_ttl_s=s["job_ttl_seconds"],
                          stream_maxlen=s["stream_maxlen"], max_deliveries=s["max_deliveries"],
                          max_payload_bytes=s["max_payload_bytes"], max_result_bytes=s["max_result_bytes"],
                          max_checkpoint_bytes=s["max_checkpoint_bytes"],
                          max_log_entry_bytes=s["max_log_entry_bytes"], max_log_entries=s["max_log_entries"],
                          completed_ttl_s=s["completed_ttl_seconds"], stats=s["stats"])
            # connect() yields under gevent: another greenlet may have made one meanwhile. Keep the
            # first, so the process has one connection pool; ours was never handed out.
            if self._queue is None:
                self._queue = queue
        return self._queue

    def pause(self, name: str) -> bool:
        """Pause this worker's task ``name`` (``task.pause()``); False when it was paused already."""
        return self.queue.pauses.pause(self._own(name))

    def resume(self, name: str) -> bool:
        """Resume this worker's task ``name`` (``task.resume()``); False when it was not paused."""
        return self.queue.pauses.resume(self._own(name))

    def is_paused(self, name: str) -> bool:
        return self.queue.pauses.is_paused(self._own(name))

    def _own(self, name: str) -> str:
        if name not in self.tasks:
            raise ValueError(f"{self!r} has no task named {name!r}; its tasks: {', '.join(sorted(self.tasks))}")
        return name

    def add_cron(self, name: str, schedule: str, function: str, *, tz: str | None = None, args: Sequence[Any] = (),
                 kwargs: dict[str, Any] | None = None,
                 missed_run_policy: MissedRunPolicy | str = MissedRunPolicy.LATEST_ONLY,
                 max_catch_up_seconds: float | None = None, overlap: bool = True) -> bool:
        """Add (or replace) the run-time cron ``name``: at each instant of ``schedule`` the task
        ``function`` this app declares runs with ``args``/``kwargs``, exactly once per instant, on
        whichever serving worker leads it. Stored in Redis: running workers pick it up within a
        second or two, without a restart. True when the name was new. Its retries, timeout and
        max_concurrency are those of ``function``."""
        where = f"cron {check_cron_name(name)!r}"
        if name in self.crons:
            raise ConfigError(f"{where}: {self!r} declares a cron of that name; choose another")
        if function not in self.tasks:
            raise ConfigError(f"{where}: {self!r} declares no task named {function!r} "
                              f"(a run-time cron runs one of the app's tasks: {', '.join(sorted(self.tasks))})")
        definition = cron_def(where, self.tasks[function].fn, schedule, tz, args, kwargs or {},
                              policy=MissedRunPolicy(missed_run_policy), max_catch_up_s=max_catch_up_seconds,
                              overlap=overlap, function=function)
        return RuntimeCrons(self.queue).add(name, definition.record())

    def remove_cron(self, name: str) -> bool:
        """Remove the run-time cron ``name`` (workers stop firing it at once); False when there was none."""
        return RuntimeCrons(self.queue).remove(check_cron_name(name)) is not None

    def future(self, job_id: str) -> Future:
        """A Future for a job id (e.g. one passed back to a web page)."""
        return Future(job_id, self.queue)

    def child_spec(self) -> dict[str, Any]:
        """How a process-pool child finds this worker again."""
        return {"app": self.import_path or self._guess_import_path(), "settings": self.settings,
                "sys_path": list(sys.path)}

    def _guess_import_path(self) -> str:
        module = sys.modules.get(self._module or "")
        for attr, value in vars(module or object()).items():
            if value is self:
                if self._module == "__main__":
                    # module is not None here: with None, vars(object()) raises TypeError before the loop
                    return f"{cast(ModuleType, module).__file__}:{attr}"
                return f"{self._module}:{attr}"
        raise ConfigError(f"cannot tell how to import {self!r} in a process-pool child; "
                          "define it at module level or run it with the upnext-gevent CLI")


def cron_def(where: str, fn: Callable[..., Any], schedule: str, tz: str | None, args: Sequence[Any],
             kwargs: dict[str, Any], **options: Any) -> CronDef:
    """A cron's definition, checked: its zone exists, its arguments fit ``fn`` and are JSON.
    Raises ConfigError (zone, overlap) or TypeError (arguments) naming the cron ``where``."""
    try:
        parsed = Schedule(schedule, tz)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(options.get("overlap", True), bool):
        raise ConfigError(f"{where}: overlap must be True or False, got {options['overlap']!r}")
    try:
        args_json, kwargs_json = encode_call(fn, fn.__name__, tuple(args), dict(kwargs))
    except TypeError as exc:
        raise TypeError(f"{where}: its args/kwargs do not fit the function: {exc}") from None
    return CronDef(parsed, args=args_json, kwargs=kwargs_json, **options)


def check_cron_name(name: str) -> str:
    """A run-time cron's name becomes part of keys: the rules of task names apply."""
    try:
        return check_function_name(name)
    except ValueError:
        raise ConfigError(f"cron name {name!r} must be non-empty and contain none of '{{', '}}', ':' or spaces") \
            from None


def load_worker(app: str) -> Worker:
    """Import ``module:attr`` (or a file path ``path.py:attr``, or ``module`` holding one Worker)."""
    target, _, attr = app.partition(":")
    if target.endswith(".py"):
        import runpy

        namespace = runpy.run_path(target, run_name="__upnext_app__")
    else:
        try:
            namespace = vars(importlib.import_module(target))
        except ImportError as exc:
            raise ConfigError(f"cannot import app module {target!r}: {exc}") from exc
    if attr:
        worker = namespace.get(attr)
        if not isinstance(worker, Worker):
            raise ConfigError(f"{app!r}: {target!r} has no Worker named {attr!r}")
    else:
        found = [v for v in namespace.values() if isinstance(v, Worker)]
        if len(found) != 1:
            raise ConfigError(f"app module {target!r} holds {len(found)} Workers; name one as {target}:ATTRIBUTE")
        worker = found[0]
    worker.import_path = worker.import_path or app
    return worker
