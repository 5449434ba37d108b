"""The pre-fork supervisor for ``--processes N`` (and for recycling children), gunicorn style.

Signal handlers only record intent; the main loop forks, reaps, restarts and rolls children.
TERM/INT: graceful stop of every child (a second one kills them); HUP: re-read the config and
replace children one by one; TTIN/TTOU: one child more or fewer.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import structlog

from upnext.config import Settings
from upnext.worker import Worker

log = structlog.get_logger("upnext")

TICK_S = 0.1
MIN_CHILD_LIFETIME_S = 1.0
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


class Supervisor:
    """Keeps ``settings.processes`` children serving ``worker``."""

    def __init__(self, worker: Worker, settings: Settings, reload: Callable[[], Settings],
                 serve_child: Callable[[Worker, Settings], int]):
        self.worker = worker
        self.settings = settings
        self.reload = reload
        self.serve_child = serve_child
        self.target = settings.processes
        self.children: dict[int, float] = {}  # pid -> started at (monotonic)
        self.signals: list[int] = []
        self.stopping_since: float | None = None

    def run(self) -> int:
        for sig in SIGNALS:
            signal.signal(sig, lambda signum, _frame: self.signals.append(signum))
        log.info("supervisor_started", pid=os.getpid(), processes=self.target)
        while True:
            self._handle_signals()
            self._reap()
            if self.stopping_since is not None:
                if not self.children:
                    log.info("supervisor_stopped")
                    return 0
                if time.monotonic() - self.stopping_since > self.settings.graceful_timeout + 5:
                    self._kill_all(signal.SIGKILL)
            else:
                while len(self.children) < self.target:
                    self._spawn()
                while len(self.children) > self.target:
                    self._signal(max(self.children, key=self.children.__getitem__), signal.SIGTERM)
                    break
            time.sleep(TICK_S)

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                if self.stopping_since is None:
                    log.info("supervisor_stopping", signal=signal.Signals(sig).name)
                    self.stopping_since = time.monotonic()
                    self._kill_all(signal.SIGTERM)
                else:
                    self._kill_all(signal.SIGKILL)
            elif self.stopping_since is not None:
                continue
            elif sig == signal.SIGHUP:
                self._reload()
            elif sig == signal.SIGTTIN:
                self.target += 1
            elif sig == signal.SIGTTOU:
                self.target = max(1, self.target - 1)

    def _reload(self) -> None:
        try:
            self.settings = self.reload()
        except Exception as exc:
            log.error("reload_failed", error=str(exc), reason="keeping the old configuration")
            return
        self.target = self.settings.processes
        old = list(self.children)
        log.info("supervisor_reloading", replacing=old, processes=self.target)
        for pid in old:
            self._spawn()
            self._signal(pid, signal.SIGTERM)

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            os.environ["UPNEXT_WORKER_INDEX"] = str(len(self.children))
            code = 1
            try:
                code = self.serve_child(self.worker, self.settings)
            finally:
                os._exit(code)
        self.children[pid] = time.monotonic()
        log.info("child_started", pid=pid)

    def _reap(self) -> None:
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            started = self.children.pop(pid, None)
            if started is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self.stopping_since is None:
                log.warning("child_exited", pid=pid, exit_code=code, restarting=True)
                if time.monotonic() - started < MIN_CHILD_LIFETIME_S:
                    time.sleep(MIN_CHILD_LIFETIME_S)  # a child that dies at once must not fork-bomb

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            self.children.pop(pid, None)

    def _kill_all(self, sig: int) -> None:
        for pid in list(self.children):
            self._signal(pid, sig)
