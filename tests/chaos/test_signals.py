"""One Ctrl-C, or one SIGTERM to the whole process group (``kill -TERM -- -PGID``) or to every
process the worker started (systemd's cgroup), is one graceful stop: no running job is failed
or started over by it, with process-pool children and with ``--processes`` children alike.

Each worker leads a session of its own, so ``os.killpg`` reaches every process in the worker's
group, as a terminal's Ctrl-C does, but never pytest.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.apps import procjobs
from tests.workers import WorkerProcess, wait_for

APP = "tests.apps.procjobs:worker"
JOB_S = 2.0
LEDGER_GREENLET = f"ledger:{procjobs.naps_in_greenlet.name}"
HOW = ["ctrl-c", "group-sigterm", "cgroup-sigterm"]


@pytest.fixture
def group_worker(redis_client, tmp_path):
    """Start ``upnext-gevent APP ARGS...`` leading its own process group; stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(*args: str, registered: int = 1, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(APP, *args, log_path=tmp_path / f"worker{len(started)}.log", env=env,
                               new_session=True)
        started.append(worker)
        worker.wait_registered(redis_client, count=registered)
        return worker

    yield start
    for worker in started:
        worker.stop()
        _kill_group(worker.pid)  # whatever it left behind (a test that killed the leader itself)
        print(f"--- {worker.log_path.name} (pid {worker.pid}) ---\n{worker.output()}")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def runs(client, task) -> dict[str, list[str]]:
    """Each job's phases as its task wrote them, in order: ["start", "end"] is one clean run."""
    phases: dict[str, list[str]] = {}
    for raw in client.lrange(f"ledger:{task.name}", 0, -1):
        entry = json.loads(raw)
        phases.setdefault(entry["job_id"], []).append(entry["phase"])
    return phases


def _tree(root: int) -> list[int]:
    """``root`` and every process descended from it, parents first (whatever session they are in)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited while we looked
    tree = [root]
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


def send(how: str, worker: WorkerProcess) -> None:
    """ctrl-c: SIGINT to the group (a terminal); group-sigterm: SIGTERM to the group (kill --
    -PGID); cgroup-sigterm: SIGTERM to every process the worker started, in its session or not
    (systemd's default KillMode=control-group)."""
    if how == "cgroup-sigterm":
        for pid in _tree(worker.pid):
            os.kill(pid, signal.SIGTERM)
    else:
        os.killpg(worker.pid, signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)


def signal_group_while_running(client, worker: WorkerProcess, submitted: dict, how: str) -> None:
    """Wait until every submitted job started, signal the worker once as ``how`` says, and check
    the worker exits 0 with each job complete after exactly one attempt that ran once."""
    for task, futures in submitted.items():
        wait_for(lambda task=task, futures=futures: len(runs(client, task)) == len(futures), timeout=30,
                 message=f"{len(futures)} {task.name} jobs started")
    send(how, worker)
    assert worker.wait(JOB_S + 30) == 0, worker.output()
    for task, futures in submitted.items():
        phases = runs(client, task)
        for future in futures:
            result = future.result(timeout=5)
            assert (result.status, result.attempts) == ("complete", 1), (future.job_id, result)
            assert phases[future.job_id] == ["start", "end"], (future.job_id, phases[future.job_id])
    output = worker.output()
    assert "jobs_handed_back" not in output and "job_failed" not in output, output


@pytest.mark.parametrize("how", HOW)
def test_a_group_signal_lets_running_process_jobs_finish(group_worker, redis_client, how):
    worker = group_worker("--concurrency", "4", "--graceful-timeout", "30",
                          env={"UPNEXT_PROCESS_POOL_SIZE": "2"})
    futures = [procjobs.naps.submit(JOB_S) for _ in range(2)]
    signal_group_while_running(redis_client, worker, {procjobs.naps: futures}, how)


@pytest.mark.parametrize("how", HOW)
def test_a_group_signal_is_one_graceful_stop_for_every_supervised_child(group_worker, redis_client, how):
    worker = group_worker("--processes", "2", "--concurrency", "3", "--graceful-timeout", "30", registered=2,
                          env={"UPNEXT_PROCESS_POOL_SIZE": "1"})
    greenlet_jobs = [procjobs.naps_in_greenlet.submit(JOB_S) for _ in range(4)]
    process_jobs = [procjobs.naps.submit(JOB_S) for _ in range(2)]
    signal_group_while_running(redis_client, worker, {procjobs.naps_in_greenlet: greenlet_jobs,
                                                      procjobs.naps: process_jobs}, how)


def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (an orphan's new parent may be slow to)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_children_of_a_killed_supervisor_finish_their_running_jobs_and_exit(group_worker, redis_client):
    worker = group_worker("--processes", "2", "--concurrency", "2", "--graceful-timeout", "30", registered=2)
    futures = [procjobs.naps_in_greenlet.submit(JOB_S) for _ in range(4)]
    wait_for(lambda: len(runs(redis_client, procjobs.naps_in_greenlet)) == len(futures), timeout=30,
             message=f"{len(futures)} jobs started")
    children = {json.loads(raw)["pid"] for raw in redis_client.lrange(LEDGER_GREENLET, 0, -1)}
    assert len(children) == 2, "precondition: both children run jobs"
    worker.signal(signal.SIGKILL)
    worker.wait()
    for future in futures:
        result = future.result(timeout=JOB_S + 20)
        assert (result.status, result.attempts) == ("complete", 1), (future.job_id, result)
    assert all(phases == ["start", "end"] for phases in runs(redis_client, procjobs.naps_in_greenlet).values())
    for pid in children:
        wait_for(lambda pid=pid: _dead(pid), timeout=30, message=f"orphaned worker child {pid} to exit")
