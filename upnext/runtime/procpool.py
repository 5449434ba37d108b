"""The process pool: the escape hatch for CPU-bound tasks (``executor="process"``).

Children are fresh interpreters (``python -m upnext.runtime.procchild``) that import the app,
started on demand and kept for later jobs. Each talks newline-delimited JSON over its own
socketpair, which the hub waits on cooperatively. A semaphore of ``size`` slots guards them:
a job holds a slot while it runs, so a job waiting for a child wakes whenever one is freed or
killed (timeout, crash, cancel) and takes an idle child or starts a new one. A child that
overruns its job's timeout is killed; a child that dies fails that job, never the worker. A
child that died while idle (found dead, or dead before it says it took the job) ran none of
it: it is replaced and the job goes to a new child.

Children run in their own session and ignore SIGINT/SIGTERM (see ``procchild``): a Ctrl-C or a
SIGTERM sent to the worker's whole process group stops the worker gracefully, and the pool's
children finish their jobs and are then stopped by the worker, never by the group's signal.
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
import gevent.lock
import structlog

from upnext.errors import JobTimeout

if TYPE_CHECKING:
    from upnext.context import JobContext
    from upnext.runtime.executor import Started

log = structlog.get_logger("upnext")

HAND_OVER_ATTEMPTS = 2  # the job's own child, then a new one if that one died before taking the job
CHILD_START_S = 60.0  # how long a new child may take to import the app and take its first job


class ChildFailed(Exception):
    """The job failed in its child: raised there, or the child died under it."""

    def __init__(self, error: str, tb: str = "", reason: str = "exception", retryable: bool = True,
                 after: float | None = None, requested: bool = False):
        super().__init__(error)
        self.error, self.tb, self.reason, self.retryable = error, tb, reason, retryable
        self.after, self.requested = after, requested  # judged in the child, where the exception's class exists


class _Child:
    def __init__(self, spec: dict[str, Any]):
        parent_end, child_end = socket.socketpair()
        env = {**os.environ, "UPNEXT_CHILD_SPEC": json.dumps(spec)}
        # Its own session: a terminal's Ctrl-C or a kill of the worker's process group never
        # reaches it, not even while it starts (before procchild can ignore those signals).
        self.proc = subprocess.Popen([sys.executable, "-m", "upnext.runtime.procchild", str(child_end.fileno())],
                                     pass_fds=[child_end.fileno()], env=env, start_new_session=True)
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
        self.slots = gevent.lock.BoundedSemaphore(size)  # one per job in a child; children <= size
        self.idle: list[_Child] = []
        self.children: list[_Child] = []

    def run(self, function: str, started: Started, ctx: JobContext, timeout_s: float) -> str:
        """Run one job in a child; returns its result as JSON text."""
        request = {"function": function, "job_id": ctx.job_id, "args": started.args, "kwargs": started.kwargs,
                   "attempt": ctx.attempt, "max_attempts": ctx.max_attempts, "parent_id": ctx.parent_id,
                   "root_id": ctx.root_id, "checkpoint": started.checkpoint,
                   "entry_id": ctx.entry_id, "worker": ctx.worker}  # the run's fencing token, for its writes
        with self.slots:  # released however the child ends, so a job waiting for one always wakes
            if ctx.is_cancelled:  # while it waited for a child: it never starts
                raise ChildFailed(f"job {ctx.job_id} was cancelled before a process was free to run it",
                                  reason="cancelled")
            line = self._run_in_child(json.dumps(request).encode() + b"\n", ctx, timeout_s)
        reply = json.loads(line)
        if not reply["ok"]:
            raise ChildFailed(reply["error"], reply.get("traceback", ""), retryable=reply.get("retryable", True),
                              after=reply.get("retry_after"), requested=reply.get("retry_requested", False))
        result: str = reply["result"]
        return result

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

    def _run_in_child(self, request: bytes, ctx: JobContext, timeout_s: float) -> bytes:
        """The reply line of a child that took the request. A child that died before it took the
        job (killed while idle, say) ran none of it: the job goes to a new child instead."""
        for _ in range(HAND_OVER_ATTEMPTS):
            line = self._try_child(request, ctx, timeout_s)
            if line is not None:
                return line
        raise ChildFailed(f"could not hand job {ctx.job_id} to a process executor child: {HAND_OVER_ATTEMPTS} in a "
                          "row died before taking it (their exit codes are in the child_replaced log lines)",
                          reason="lost")

    def _try_child(self, request: bytes, ctx: JobContext, timeout_s: float) -> bytes | None:
        """The reply of one child; None if it died before taking the request. The job's timeout
        runs from when the child took it: a new child's start (its app import) is not the job's
        time. A child that never takes it times the job out after the start bound instead."""
        child = self._acquire()
        child.job_id = ctx.job_id
        try:
            with gevent.Timeout(max(timeout_s, CHILD_START_S), JobTimeout):
                taken = self._hand_over(child, request)
            with gevent.Timeout(timeout_s, JobTimeout):
                line = self._read_line(child) if taken else b""
        except BaseException as exc:
            if isinstance(exc, JobTimeout):
                log.warning("child_killed", pid=child.proc.pid, job_id=ctx.job_id, reason="timeout")
            self._discard(child)
            raise
        if line:
            child.job_id = None
            self.idle.append(child)
            return line
        self._discard(child)
        if ctx.is_cancelled:
            raise ChildFailed(f"job {ctx.job_id} was cancelled; its process was terminated", reason="cancelled")
        if taken:
            raise ChildFailed(f"process executor child (pid {child.proc.pid}) died with exit code "
                              f"{child.proc.returncode} while running job {ctx.job_id}", reason="lost")
        log.warning("child_replaced", pid=child.proc.pid, exit_code=child.proc.returncode, job_id=ctx.job_id,
                    reason="died before taking the job")
        return None

    def _hand_over(self, child: _Child, request: bytes) -> bool:
        """Send the request; True once the child says it took it (before any code of the job runs)."""
        try:
            child.sock.sendall(request)
        except OSError:
            return False  # its end is closed: it died, idle, before we noticed
        return bool(self._read_line(child))

    @staticmethod
    def _read_line(child: _Child) -> bytes:
        try:
            return child.rfile.readline()
        except ConnectionResetError:
            return b""  # died with our request unread: the same as end of file

    def _acquire(self) -> _Child:
        """An idle child that is still alive, or a new one (the caller holds a slot: there is room)."""
        while self.idle:
            child: _Child = self.idle.pop()
            if child.proc.poll() is None:
                return child
            log.warning("child_replaced", pid=child.proc.pid, exit_code=child.proc.returncode,
                        reason="died while idle")
            self._discard(child)
        child = _Child(self.spec)
        self.children.append(child)
        log.info("child_started", pid=child.proc.pid)
        return child

    def _discard(self, child: _Child) -> None:
        child.kill()
        if child in self.children:
            self.children.remove(child)
        if child in self.idle:
            self.idle.remove(child)
