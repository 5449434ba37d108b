"""The process pool: the escape hatch for CPU-bound tasks (``executor="process"``).

Children are fresh interpreters (``python -m upnext.procchild``) that import the app,
started lazily and kept for later jobs. Each talks newline-delimited JSON over its own
socketpair, which the hub waits on cooperatively. A child that overruns its job's timeout
is killed and replaced; a child that dies fails that job, never the worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import gevent
import gevent.queue
import structlog

from upnext.errors import JobTimeout

if TYPE_CHECKING:
    from upnext.context import JobContext
    from upnext.executor import Started

log = structlog.get_logger("upnext")


class ChildFailed(Exception):
    """The job failed in its child: raised there, or the child died under it."""

    def __init__(self, error: str, tb: str = "", reason: str = "exception", retryable: bool = True):
        super().__init__(error)
        self.error, self.tb, self.reason, self.retryable = error, tb, reason, retryable


class _Child:
    def __init__(self, spec: dict[str, Any]):
        parent_end, child_end = socket.socketpair()
        env = {**os.environ, "UPNEXT_CHILD_SPEC": json.dumps(spec)}
        self.proc = subprocess.Popen([sys.executable, "-m", "upnext.procchild", str(child_end.fileno())],
                                     pass_fds=[child_end.fileno()], env=env)
        child_end.close()
        self.sock = parent_end
        self.rfile = parent_end.makefile("rb")
        self.job_id: str | None = None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.rfile.close()
        self.sock.close()


class ProcessPool:
    """At most ``size`` children, each running one job at a time."""

    def __init__(self, size: int, spec: dict[str, Any]):
        self.size = size
        self.spec = spec
        self.idle: gevent.queue.Queue[_Child] = gevent.queue.Queue()
        self.children: list[_Child] = []

    def run(self, function: str, started: Started, ctx: JobContext, timeout_s: float) -> str:
        """Run one job in a child; returns its result as JSON text."""
        child = self._acquire()
        child.job_id = ctx.job_id
        request = {"function": function, "job_id": ctx.job_id, "args": started.args, "kwargs": started.kwargs,
                   "attempt": ctx.attempt, "max_attempts": ctx.max_attempts, "parent_id": ctx.parent_id,
                   "root_id": ctx.root_id, "checkpoint": started.checkpoint}
        try:
            child.sock.sendall(json.dumps(request).encode() + b"\n")
            with gevent.Timeout(timeout_s, JobTimeout):
                line = child.rfile.readline()
        except JobTimeout:
            log.warning("child_killed", pid=child.proc.pid, job_id=ctx.job_id, reason="timeout")
            self._discard(child)
            raise
        except BaseException:
            self._discard(child)
            raise
        if not line:
            self._discard(child)
            if ctx.is_cancelled:
                raise ChildFailed(f"job {ctx.job_id} was cancelled; its process was terminated", reason="cancelled")
            raise ChildFailed(f"process executor child (pid {child.proc.pid}) died with exit code "
                              f"{child.proc.returncode} while running job {ctx.job_id}", reason="lost")
        child.job_id = None
        self.idle.put(child)
        reply = json.loads(line)
        if not reply["ok"]:
            raise ChildFailed(reply["error"], reply.get("traceback", ""), retryable=reply.get("retryable", True))
        return reply["result"]

    def terminate_job(self, job_id: str) -> bool:
        """Kill the child running ``job_id`` (cancellation); its run then fails as cancelled."""
        for child in self.children:
            if child.job_id == job_id and child.proc.poll() is None:
                os.kill(child.proc.pid, signal.SIGKILL)
                return True
        return False

    def close(self) -> None:
        for child in list(self.children):
            self._discard(child)

    def _acquire(self) -> _Child:
        if self.idle.empty() and len(self.children) < self.size:
            child = _Child(self.spec)
            self.children.append(child)
            log.info("child_started", pid=child.proc.pid)
            return child
        return self.idle.get()

    def _discard(self, child: _Child) -> None:
        child.kill()
        if child in self.children:
            self.children.remove(child)
