"""Two releases side by side: this checkout, and the previous release built once per machine
(its ``git archive`` tree and a venv with that tree pip-installed, in
``~/.cache/upnext-tests/prev-<commit>``, or under ``$UPNEXT_TEST_CACHE``, reused when complete);
their workers and web processes."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.workers import ROOT, WorkerProcess

PREVIOUS = "deebde6"  # main before the data format was versioned (format 1, no stamp)
CACHE = Path(os.environ.get("UPNEXT_TEST_CACHE", Path.home() / ".cache" / "upnext-tests"))
BUILD_TIMEOUT_S = 600


class BuildError(Exception):
    """The previous release could not be built; the message says which step failed and why."""


@dataclass(frozen=True)
class Release:
    """A built release: ``python -m upnext.cli APP`` with cwd = ``tree`` runs its worker."""

    tree: Path
    python: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for its processes: nothing of this checkout leaks onto its sys.path."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        return {**env, "PYTHONPATH": str(self.tree), **extra}


def previous_release(commit: str = PREVIOUS) -> Release:
    """Build the release at ``commit`` unless a complete build is cached; one builder at a time."""
    home = CACHE / f"prev-{commit}"
    release = Release(tree=home / "tree", python=home / "venv" / "bin" / "python")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"prev-{commit}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building the same release
        if not ((home / "complete").exists() and release.python.exists()):
            shutil.rmtree(home, ignore_errors=True)  # a build that was cut short
            _build(commit, home, release)
            (home / "complete").touch()
    return release


def _build(commit: str, home: Path, release: Release) -> None:
    release.tree.mkdir(parents=True)
    archive = home / "tree.tar"
    _run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), commit],
         f"git archive of commit {commit} (the test needs the repository's history, not a shallow clone)")
    _run(["tar", "-xf", str(archive), "-C", str(release.tree)], f"extracting {archive}")
    archive.unlink()
    _run([sys.executable, "-m", "venv", str(home / "venv")], f"creating the venv {home / 'venv'}")
    _run([str(release.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(release.tree)],
         f"pip install of the previous release ({commit}) into {home / 'venv'}")


def _run(command: list[str], step: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{step} failed: {exc}") from None
    if done.returncode != 0:
        raise BuildError(f"{step} failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-4000:]}")


CURRENT = Release(tree=ROOT, python=Path(sys.executable))
CLIENT = ROOT / "tests" / "upgrade" / "client.py"


class ReleaseWorker(WorkerProcess):
    """``python -m upnext.cli APP ARGS...`` of one release, run from that release's tree."""

    def __init__(self, release: Release, app: str, *args: str, log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen([str(release.python), "-m", "upnext.cli", app, *args], cwd=release.tree,
                                     env=release.env(**env), stdout=self._log, stderr=subprocess.STDOUT)


def submit(release: Release, app: str, specs: list[dict[str, Any]]) -> list[str]:
    """Submit jobs from a web process of ``release``; returns their ids in the order of ``specs``."""
    done = subprocess.run([str(release.python), str(CLIENT), app, "submit", json.dumps(specs)], cwd=release.tree,
                          env=release.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"submit from {release.tree} failed:\n{done.stderr}"
    return json.loads(done.stdout)


class Waiter:
    """A web process of ``release`` waiting for jobs (started now, read with ``outcomes``)."""

    def __init__(self, release: Release, app: str, ids: list[str], timeout_s: float):
        self.release = release
        self.proc = subprocess.Popen([str(release.python), str(CLIENT), app, "wait", str(timeout_s), *ids],
                                     cwd=release.tree, env=release.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.timeout_s = timeout_s
        self._outcomes: dict[str, dict[str, Any]] | None = None

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """{job id: {"status", "value" or "error", "attempts", "logs"}} as this release's waiter read them."""
        if self._outcomes is None:
            out, err = self.proc.communicate(timeout=self.timeout_s + 30)
            assert self.proc.returncode == 0, f"waiter of {self.release.tree} failed:\n{err}"
            self._outcomes = json.loads(out)
        return self._outcomes
