"""Where a worker's time goes, per job: py-spy samples of bench/run.py's worker (concurrency 100,
batch 32, inbox 32) under the drain and under round trips, sorted into the phases of a job, with
the worker's CPU µs per job and the Redis calls per job (INFO commandstats, the job bodies'
INCRs left out). py-spy is a development tool (pip install py-spy), not a dependency.

  drain       N no-op jobs enqueued first, then the worker started: its CPU while it drains them
  round trip  N jobs one at a time (task.wait()) from this process against an idle worker

py-spy drops some samples taken inside gevent's C loop, so the shares are of the samples it
kept, and the µs are those shares of the CPU time /proc counts.

Usage: python bench/profile.py [--jobs 40000] [--round-trips 2000] [--log-level error]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from run import OURS, PEERS, Runner, System, local_redis, machine

WARM_UP = 50  # peers/_common.py: the round trips a client makes before those it times

# (phase, a frame that marks it), tried in order on each sample's stack, leaf last.
PHASES = [
    ("job body (its INCR)", "upnext_gevent_peer.py"),
    ("logging (structlog)", "/structlog/"),
    ("run: hooks, timeout, context", "executor.py"),
    ("start: spawn, context", "Runtime._start_one"),
    ("fetch + start (take, wait)", "fetching.py"),
    ("finish (flush)", "flush_tick"),
    ("heartbeat, promote, keeper", "loops.py"),
]
OTHER = "gevent hub: I/O wait and switches"


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase_of(stack: str) -> str:
    return next((name for name, mark in PHASES if mark in stack), OTHER)


class Profiler:
    def __init__(self, runner: Runner, ours: System, log_level: str):
        self.runner, self.ours, self.log_level = runner, ours, log_level
        self.spy = shutil.which("py-spy") or sys.exit("py-spy is needed on PATH (pip install py-spy)")

    def drain(self, n: int) -> str:
        self.runner.redis.flushall()
        self.runner.call(self.ours, "enqueue", "noop", str(n))
        proc = self.runner.start(self.ours, 100, "--log-level", self.log_level)
        try:
            self.runner.wait_done(1, proc, 120)
            return self.sampled("drain", proc, lambda: self.runner.wait_done(n, proc, n / 50 + 120), n)
        finally:
            self.runner.stop(proc)

    def round_trips(self, n: int) -> str:
        self.runner.redis.flushall()
        proc = self.runner.start(self.ours, 100, "--log-level", self.log_level, results=True)
        try:
            self.runner.ready(self.ours, proc)
            run = lambda: self.runner.call(self.ours, "roundtrip", str(n), results=True)  # noqa: E731
            return self.sampled("round trip", proc, run, n + WARM_UP)
        finally:
            self.runner.stop(proc)

    def sampled(self, name: str, proc: subprocess.Popen[bytes], run: Callable[[], object], n: int) -> str:
        """py-spy on the worker (the CLI execs it in the adapter's process: the same pid) while
        ``run`` makes it work through ``n`` jobs; the budget of those jobs."""
        raw = Path(tempfile.mkdtemp()) / f"{name}.raw"
        spy = subprocess.Popen([self.spy, "record", "--pid", str(proc.pid), "--rate", "500", "--nonblocking",
                                "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        done_before, calls_before, cpu_before = self.runner.done_count(), self.calls(), cpu_s(proc.pid)
        began = time.monotonic()
        run()
        elapsed, used = time.monotonic() - began, cpu_s(proc.pid) - cpu_before
        calls = self.calls() - calls_before
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        jobs = n - done_before if name == "drain" else n
        calls["incrby"] -= self.runner.done_count() - done_before  # the job bodies' own INCRs
        return budget(name, jobs, elapsed, used, raw, calls)

    def calls(self) -> collections.Counter[str]:
        info = self.runner.redis.info("commandstats")
        return collections.Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in info.items()})


def budget(name: str, n: int, elapsed: float, used: float, raw: Path, calls: collections.Counter[str]) -> str:
    shares: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        shares[phase_of(stack)] += int(count)
    total = sum(shares.values()) or 1
    per_job_us = used / n * 1e6
    lines = [f"\n{name}: {n:,} jobs in {elapsed:.2f} s; worker CPU {used / elapsed:.0%} of a core, "
             f"{per_job_us:.0f} µs per job ({total:,} samples)", "", "| phase | share | µs per job |",
             "|---|---:|---:|"]
    for phase in [p for p, _ in PHASES] + [OTHER]:
        lines.append(f"| {phase} | {shares[phase] / total:.0%} | {per_job_us * shares[phase] / total:.0f} |")
    per_job = ", ".join(f"{c} {v / n:.2f}" for c, v in calls.most_common() if v > 0 and c != "info")
    lines.append(f"\nRedis calls per job (Lua's inner calls included): {per_job}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40000, help="the drain's backlog")
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--log-level", default="error", help="the worker's (bench/run.py runs it at error)")
    opts = parser.parse_args()
    with local_redis() as url:
        runner = Runner(url, quick=False)
        ours = System(OURS, sys.executable)
        profiler = Profiler(runner, ours, opts.log_level)
        print(f"Machine: {machine()}; worker log level {opts.log_level}.")
        print(profiler.drain(opts.jobs))
        print(profiler.round_trips(opts.round_trips))


if __name__ == "__main__":
    sys.path.insert(0, str(PEERS))
    main()
