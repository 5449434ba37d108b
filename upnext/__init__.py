"""upnext-gevent: background jobs for gevent web apps. Public names only; never monkey-patches."""

from upnext.config import WorkerQueueConfig
from upnext.context import JobContext, get_current_context
from upnext.errors import ConfigError, JobNotFound, TaskExecutionError, TaskTimeoutError, UpnextError
from upnext.future import Future, TaskResult
from upnext.standalone import run
from upnext.task import TaskHandle
from upnext.worker import SyncExecutor, Worker

__all__ = [
    "ConfigError", "Future", "JobContext", "JobNotFound", "SyncExecutor", "TaskExecutionError", "TaskHandle",
    "TaskResult", "TaskTimeoutError", "UpnextError", "Worker", "WorkerQueueConfig", "get_current_context", "run",
]
