"""upnext-gevent: background jobs for gevent web apps. Public names only; never monkey-patches.

Names are imported on first use, so ``upnext-gevent`` (``upnext.cli.main``) can monkey-patch before
redis, structlog or click are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from upnext.config import WorkerQueueConfig
    from upnext.context import JobContext, get_current_context
    from upnext.context import JobContext as Context
    from upnext.cron import MissedRunPolicy
    from upnext.errors import (
        ConfigError,
        JobNotFound,
        Permanent,
        QueueFull,
        Retry,
        TaskExecutionError,
        TaskTimeoutError,
        UpnextError,
    )
    from upnext.events import Event
    from upnext.future import Future
    from upnext.job import FailureReason, JobStatus, Priority
    from upnext.result import TaskResult
    from upnext.runtime.drain import drain
    from upnext.runtime.standalone import run
    from upnext.task import TaskHandle
    from upnext.worker import SyncExecutor, Worker
    from upnext.workflow import first_completed, gather, map_tasks, submit_many

# name -> its module, or "module:attribute" when the public name is an alias.
_HOMES = {
    "WorkerQueueConfig": "upnext.config",
    "Context": "upnext.context:JobContext", "JobContext": "upnext.context", "get_current_context": "upnext.context",
    "FailureReason": "upnext.job", "JobStatus": "upnext.job", "Priority": "upnext.job",
    "MissedRunPolicy": "upnext.cron", "Event": "upnext.events",
    "ConfigError": "upnext.errors", "JobNotFound": "upnext.errors", "TaskExecutionError": "upnext.errors",
    "TaskTimeoutError": "upnext.errors", "UpnextError": "upnext.errors", "Permanent": "upnext.errors",
    "Retry": "upnext.errors", "QueueFull": "upnext.errors",
    "Future": "upnext.future", "TaskResult": "upnext.result",
    "drain": "upnext.runtime.drain", "run": "upnext.runtime.standalone",
    "TaskHandle": "upnext.task",
    "SyncExecutor": "upnext.worker", "Worker": "upnext.worker",
    "first_completed": "upnext.workflow", "gather": "upnext.workflow", "map_tasks": "upnext.workflow",
    "submit_many": "upnext.workflow",
}
__all__ = [
    "ConfigError", "Context", "Event", "FailureReason", "Future", "JobContext", "JobNotFound", "JobStatus",
    "MissedRunPolicy", "Permanent", "Priority", "QueueFull", "Retry", "SyncExecutor",
    "TaskExecutionError", "TaskHandle", "TaskResult", "TaskTimeoutError", "UpnextError", "Worker",
    "WorkerQueueConfig", "drain", "first_completed", "gather", "get_current_context", "map_tasks", "run", "submit_many",
]


FALLBACK_VERSION = "0+unknown"  # a source tree that was never installed has no package metadata


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _HOMES:
        module, _, attribute = _HOMES[name].partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
    else:
        raise AttributeError(f"module 'upnext' has no attribute {name!r}")
    globals()[name] = value
    return value


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("upnext-gevent")
    except PackageNotFoundError:
        return FALLBACK_VERSION
