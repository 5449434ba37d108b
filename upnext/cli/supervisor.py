"""The pre-fork supervisor for ``--processes N`` (and for recycling children), gunicorn style.

Signal handlers only record intent; the main loop forks, reaps, restarts and rolls children.
TERM/INT: one graceful TERM to every child, SIGKILL after graceful_timeout + 5 s (a second
TERM/INT kills at once). A child stops gracefully on its first TERM/INT and ignores later ones
(``serve_here`` with ``supervised``): a Ctrl-C or a group/cgroup SIGTERM reaches it directly and
again forwarded by us, and must not look like a second signal. HUP: re-read the config and
replace the children one by one; TTIN/TTOU: one child more or fewer. Each child gets
``UPNEXT_WORKER_INDEX`` (0..N-1).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import gevent
import structlog

from upnext import log as logsetup
from upnext.config import Settings
from upnext.worker import Worker

log = structlog.get_logger("upnext")

TICK_S = 0.1
MIN_CHILD_LIFETIME_S = 1.0  # a child that dies younger is replaced no sooner than this: no fork loop
ROLL_STEP_S = 1.0  # HUP: the next old child is replaced once the newest one has lived this long
KILL_AFTER_GRACE_S = 5.0
PARENT_CHECK_S = 1.0
EXIT_REFUSED = 3  # a child's worker refused to start (its configuration): restarting cannot help
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


@dataclass
class Child:
    pid: int
    index: int
    started_at: float  # monotonic
    retiring: bool = False  # sent its one graceful TERM; no longer counts towards the target


class Supervisor:
    """Keeps ``settings.processes`` children serving ``worker``; ``run`` returns the exit code."""

    def __init__(self, worker: Worker, settings: Settings, reload: Callable[[], Settings],
                 serve_child: Callable[[Worker, Settings], int]):
        self.worker = worker
        self.settings = settings
        self.reload = reload
        self.serve_child = serve_child
        self.target = settings.processes
        self.children: dict[int, Child] = {}
        self.to_roll: list[int] = []  # pids still running an old configuration after a HUP
        self.signals: list[int] = []
        self.stopping_since: float | None = None
        self.killed = False
        self.spawn_not_before = 0.0
        self.exit_code = 0

    def run(self) -> int:
        for sig in SIGNALS:
            signal.signal(sig, self._record)
        log.info("supervisor_started", pid=os.getpid(), processes=self.target)
        while True:
            self._handle_signals()
            self._reap()
            if self.stopping_since is None:
                self._roll()
                self._scale()
            else:
                self._kill_when_overdue()
            if (self.stopping_since is not None or self.target == 0) and not self.children:
                break  # stopped, or every burst child finished
            time.sleep(TICK_S)
        log.info("supervisor_stopped", exit_code=self.exit_code)
        return self.exit_code

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _kill_when_overdue(self) -> None:
        assert self.stopping_since is not None
        overdue = time.monotonic() - self.stopping_since > self.settings.graceful_timeout + KILL_AFTER_GRACE_S
        if overdue and not self.killed and self.children:
            log.warning("children_killed", pids=sorted(self.children), reason="graceful_timeout passed")
            self._kill_all(signal.SIGKILL)

    # -- intent recorded by the signal handlers --------------------------------------------
    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                self._stop(signal.Signals(sig).name)
            elif self.stopping_since is not None:
                continue
            elif sig == signal.SIGHUP:
                self._reload()
            elif sig == signal.SIGTTIN:
                self.target += 1
                log.info("processes_changed", processes=self.target)
            elif sig == signal.SIGTTOU:
                self.target = max(1, self.target - 1)
                log.info("processes_changed", processes=self.target)

    def _stop(self, reason: str) -> None:
        if self.stopping_since is not None:
            log.warning("children_killed", pids=sorted(self.children), reason=f"second {reason}")
            self._kill_all(signal.SIGKILL)
            return
        log.info("supervisor_stopping", reason=reason, graceful_timeout_s=self.settings.graceful_timeout)
        self.stopping_since = time.monotonic()
        for child in list(self.children.values()):
            self._retire(child)

    def _reload(self) -> None:
        try:
            settings = self.reload()
        except Exception as exc:
            log.error("reload_failed", error=str(exc), reason="keeping the old configuration")
            return
        self.settings = settings
        logsetup.setup(settings.log_level, settings.log_format)
        self.target = settings.processes
        self.to_roll = sorted(pid for pid, child in self.children.items() if not child.retiring)
        log.info("supervisor_reloading", replacing=self.to_roll, processes=self.target)

    # -- keeping the right children ----------------------------------------------------------
    def _roll(self) -> None:
        """Replace one old child per step: start its successor (same index), then TERM it."""
        self.to_roll = [pid for pid in self.to_roll if pid in self.children and not self.children[pid].retiring]
        if not self.to_roll:
            return
        youngest = max((c.started_at for c in self.children.values() if not c.retiring), default=0.0)
        if time.monotonic() - youngest < ROLL_STEP_S:
            return
        old = self.children[self.to_roll.pop(0)]
        self._spawn(old.index)
        self._retire(old)

    def _scale(self) -> None:
        active = [c for c in self.children.values() if not c.retiring]
        for child in sorted(active, key=self._retire_order)[:max(0, len(active) - self.target)]:
            self._retire(child)
        missing = self.target - len(active)
        if missing > 0 and time.monotonic() >= self.spawn_not_before:
            used = {c.index for c in active}
            for index in [i for i in range(self.target) if i not in used][:missing]:
                self._spawn(index)

    def _retire_order(self, child: Child) -> tuple[bool, int]:
        """Children of an old configuration go first, then the highest index (indexes stay 0..N-1)."""
        return (child.pid not in self.to_roll, -child.index)

    def _retire(self, child: Child) -> None:
        if not child.retiring:
            child.retiring = True
            self._signal(child.pid, signal.SIGTERM)
            log.info("child_retiring", pid=child.pid, index=child.index)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:
                self._exited(child, os.waitstatus_to_exitcode(status))

    def _exited(self, child: Child, code: int) -> None:
        fields = {"pid": child.pid, "index": child.index, "exit_code": code}
        if self.stopping_since is not None or child.retiring:
            log.info("child_stopped", **fields)
        elif code == EXIT_REFUSED:
            log.error("child_refused_to_start", **fields, reason="configuration error; not restarting")
            self.exit_code = EXIT_REFUSED
            self._stop("child_refused_to_start")
        elif code == 0 and self.settings.burst:
            log.info("child_finished", **fields, reason="burst: queues empty")
            self.target = max(0, self.target - 1)
        else:
            if code == 0:  # max_jobs_per_child / max_memory_per_child: a planned recycle
                log.info("child_recycled", **fields)
            else:
                log.warning("child_died", **fields, restarting=True)
            if time.monotonic() - child.started_at < MIN_CHILD_LIFETIME_S:
                self.spawn_not_before = time.monotonic() + MIN_CHILD_LIFETIME_S

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._child_main(index, parent_pid)
        self.children[pid] = Child(pid, index, time.monotonic())
        log.info("child_started", pid=pid, index=index)

    def _child_main(self, index: int, parent_pid: int) -> None:
        """In the forked child: never returns."""
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
                signal.signal(sig, signal.SIG_IGN)  # meant for the supervisor, even if sent to the group
            os.environ["UPNEXT_WORKER_INDEX"] = str(index)
            gevent.spawn(_watch_parent, parent_pid).name = "supervisor_watch"
            code = self.serve_child(self.worker, self.settings)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # already gone; _reap accounts for it

    def _kill_all(self, sig: int) -> None:
        self.killed = True
        for pid in list(self.children):
            self._signal(pid, sig)


def _watch_parent(parent_pid: int) -> None:
    """A child whose supervisor died (kill -9) drains and exits instead of living on as an orphan."""
    while os.getppid() == parent_pid:
        gevent.sleep(PARENT_CHECK_S)
    log.warning("supervisor_gone", parent_pid=parent_pid, reason="draining this orphaned child")
    os.kill(os.getpid(), signal.SIGTERM)
