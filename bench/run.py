"""Benchmark runner: upnext-gevent and its peers on the same workloads, side by side in one run.

Starts its own loopback redis-server, runs every system's worker through that system's own CLI
(the adapters in bench/peers/), and prints a table with ratios. See bench/README.md.
Usage: python bench/run.py [--quick] [--only upnext_gevent,huey,...] [--results bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
OURS = "upnext_gevent"
DEFAULTS_ROW = "upnext-gevent (defaults: concurrency 2, batch 4)"
NO_IO = {"rq"}  # one job at a time: 2,000 x 50 ms would take 100 s and says nothing about overlap
POLL_S = 0.005  # how often the runner reads the done counter
PAIRS = 3  # one-process / two-process measurements per scaling ratio (1 with --quick)
ROUND_TRIP_ROUNDS = 3  # round trips per system, the systems in turn (1 with --quick)


# Run by ``Runner.body_ceilings`` as ``python -c BODIES_ALONE n io_n ms concurrency``. The I/O
# body goes first, as in the I/O workload: its first wave opens the pool's connections.
BODIES_ALONE = """
from gevent import monkey; monkey.patch_all()
import gevent.pool, os, redis, sys, time
n, io_n, ms, concurrency = map(int, sys.argv[1:])
r = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], max_connections=1000)
pool = gevent.pool.Pool(concurrency)

def io():
    time.sleep(ms / 1000)
    r.incr("bench:ceiling")

def timed(body, count):
    began = time.perf_counter()
    for _ in range(count):
        pool.spawn(body)
    pool.join()
    return time.perf_counter() - began

io_s = timed(io, io_n)
print(n / timed(lambda: r.incr("bench:ceiling"), n), (io_n * ms / 1000 / concurrency) / io_s)
"""

@dataclass
class System:
    key: str
    python: str
    name: str = ""
    results: dict[str, float] = field(default_factory=dict)

    @property
    def script(self) -> str:
        return str(PEERS / f"{self.key}_peer.py")


@contextlib.contextmanager
def local_redis() -> Iterator[str]:
    """A redis-server of this run's own on a free loopback port, without persistence; its URL
    once it answers PING. Stopped on the way out."""
    binary = shutil.which("redis-server") or sys.exit("redis-server is needed on PATH")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no"], stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        client, deadline = redis.Redis.from_url(url), time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def discover(only: set[str] | None) -> tuple[list[System], list[str]]:
    """Ours first, then every peer adapter whose venv exists; the others are reported skipped."""
    systems, skipped = [], []
    for path in sorted(PEERS.glob("*_peer.py"), key=lambda p: (p.stem != f"{OURS}_peer", p.stem)):
        key = path.stem.removesuffix("_peer")
        if only and key not in only:
            continue
        venv = re.search(r'^VENV = "(.*)"', path.read_text(), re.M)
        python = str(BENCH / venv.group(1) / "bin" / "python") if venv and venv.group(1) else sys.executable
        if not Path(python).exists():
            skipped.append(f"{key}: {python} is missing (run bench/setup_peers.sh)")
            continue
        systems.append(System(key, python))
    return systems, skipped


class Runner:
    def __init__(self, url: str, quick: bool):
        self.url = url
        self.pairs = 1 if quick else PAIRS
        self.rounds = 1 if quick else ROUND_TRIP_ROUNDS
        self.redis = redis.Redis.from_url(url)
        self.env = {**os.environ, "BENCH_REDIS_URL": url, "UPNEXT_REDIS_URL": url, "PYTHONPATH": str(PEERS)}

    # -- plumbing ------------------------------------------------------------------------
    def env_for(self, system: System, results: bool = False) -> dict[str, str]:
        """Ours imports this checkout's upnext (not whichever is installed; the upnext 0.0.8 peer
        must not see it); ``results``: the workload reads results (see peers/_common.py)."""
        env = dict(self.env)
        if system.key == OURS:
            env["PYTHONPATH"] = os.pathsep.join((str(PEERS), str(BENCH.parent)))
        if results:
            env["BENCH_RESULTS"] = "1"
        return env

    def call(self, system: System, *args: str, timeout: float = 600, results: bool = False) -> dict:
        done = subprocess.run([system.python, system.script, *args], cwd=PEERS, env=self.env_for(system, results),
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{system.key} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def name_of(self, system: System) -> str:
        code = f"import {system.key}_peer as peer; print(peer.NAME)"
        done = subprocess.run([system.python, "-c", code], cwd=PEERS, env=self.env_for(system), capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{system.key}: its adapter does not import:\n{done.stderr[-2000:]}")
        return done.stdout.strip().splitlines()[-1]

    def start(self, system: System, concurrency: int, *extra: str, results: bool = False) -> subprocess.Popen:
        """A worker; ``results``: configured to store results (only the round trips read them)."""
        return subprocess.Popen([system.python, system.script, "worker", str(concurrency), *extra], cwd=PEERS,
                                env=self.env_for(system, results), stdout=subprocess.DEVNULL, start_new_session=True)

    def stop(self, proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def done_count(self) -> int:
        return int(self.redis.get("bench:done") or 0)

    def wait_done(self, n: int, proc: subprocess.Popen, timeout: float) -> float:
        """Wall-clock time at which ``n`` jobs had counted themselves done, to POLL_S: every
        poll takes CPU from the two cores the workers and redis-server share, and the shortest
        timed span (I/O, ~1.3 s) still sees it as under 0.4 %."""
        deadline = time.monotonic() + timeout
        while self.done_count() < n:
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode} after {self.done_count()} of {n} jobs")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.done_count()} of {n} jobs were done after {timeout:.0f} s")
            time.sleep(POLL_S)
        return time.time()

    def ready(self, system: System, proc: subprocess.Popen) -> None:
        """A worker is ready once it ran one job; the counter is then reset."""
        self.call(system, "enqueue", "noop", "1")
        self.wait_done(1, proc, 120)
        self.redis.set("bench:done", 0)

    # -- workloads -----------------------------------------------------------------------
    def enqueue_rate(self, system: System, n: int) -> float:
        self.redis.flushall()
        return n / self.call(system, "enqueue", "noop", str(n))["seconds"]

    def drain(self, system: System, n: int, *extra: str) -> tuple[float, float]:
        """Jobs/s from the first completion to the last (backlog enqueued first), and the peak
        RSS of the worker's whole process tree in MB."""
        self.redis.flushall()
        self.call(system, "enqueue", "noop", str(n))
        proc = self.start(system, 100, *extra)
        try:
            self.wait_done(1, proc, 120)
            first = time.time()
            last = self.wait_done(n, proc, n / 50 + 120)
            rss = tree_peak_rss_mb(proc.pid)
        finally:
            self.stop(proc)
        return (n - 1) / (last - first), rss

    def io_efficiency(self, system: System, n: int, ms: int = 50, concurrency: int = 100, *extra: str) -> float:
        """Ideal time (n * ms / concurrency) over the time from the first submit to the last
        completion, with the worker already running."""
        self.redis.flushall()
        proc = self.start(system, concurrency, *extra)
        try:
            self.ready(system, proc)
            submit = subprocess.Popen([system.python, system.script, "enqueue", "io_sleep", str(n), str(ms)],
                                      cwd=PEERS, env=self.env_for(system), stdout=subprocess.PIPE, text=True)
            last = self.wait_done(n, proc, 300)
            started_at = json.loads(submit.communicate(timeout=60)[0].strip().splitlines()[-1])["started_at"]
        finally:
            self.stop(proc)
        return (n * ms / 1000 / concurrency) / (last - started_at)

    def round_trip_ms(self, system: System, n: int, *extra: str) -> tuple[float, float, float]:
        self.redis.flushall()
        proc = self.start(system, 100, *extra, results=True)
        try:
            self.ready(system, proc)
            samples = self.call(system, "roundtrip", str(n), results=True)["ms"]
        finally:
            self.stop(proc)
        q = statistics.quantiles(samples, n=100)
        return q[49], q[89], q[98]

    def cpu_rate(self, system: System, n: int, *extra: str) -> float:
        """CPU-bound jobs/s from the first completion to the last, like the drain (the submitting
        process's start-up would otherwise count, and compete for a core). One slot per
        process: a greenlet running pure Python does not yield, so more would only queue jobs
        behind it in one process while the other idles at the end."""
        self.redis.flushall()
        proc = self.start(system, 1, *extra)
        try:
            self.ready(system, proc)
            submit = subprocess.Popen([system.python, system.script, "enqueue", "cpu", str(n), "2000000"],
                                      cwd=PEERS, env=self.env_for(system), stdout=subprocess.DEVNULL)
            first = self.wait_done(1, proc, 600)
            rate = (n - 1) / (self.wait_done(n, proc, 600) - first)
            submit.wait(timeout=60)
        finally:
            self.stop(proc)
        return rate

    def body_ceilings(self, n: int, io_n: int, ms: int = 50, concurrency: int = 100) -> tuple[float, float]:
        """The job bodies alone in 100 monkey-patched greenlets, no queue at all: the no-op body
        (one INCR through redis-py) as jobs/s, and the I/O body (sleep, then INCR) as the same
        efficiency the I/O workload reports. No gevent worker running these bodies on this
        machine can beat them."""
        args = [str(v) for v in (n, io_n, ms, concurrency)]
        done = subprocess.run([sys.executable, "-c", BODIES_ALONE, *args], env=self.env, capture_output=True,
                              text=True, check=True)
        drain, io = done.stdout.split()
        return float(drain), float(io)

    def measure(self, system: System, sizes: dict[str, int]) -> None:
        r = system.results
        r["enqueue"] = self.enqueue_rate(system, sizes["jobs"])
        r["drain"], r["rss_mb"] = self.drain(system, sizes["jobs"])
        if system.key not in NO_IO:
            r["io"] = self.io_efficiency(system, sizes["io"])
        if system.key == OURS:
            r["drain_defaults"] = self.drain(system, sizes["defaults_jobs"], "--seed-defaults")[0]
            # 2 slots: 40 x 50 ms is the same ideal second as 2,000 x 50 ms in 100
            r["io_defaults"] = self.io_efficiency(system, sizes["io"] // 50, 50, 2, "--seed-defaults")
            r["round_trip_defaults"] = self.round_trip_ms(system, sizes["round_trips"], "--seed-defaults")
            r["against_ceiling"] = self.against_ceiling(system, sizes)
            r["drain_scaling"] = self.scaling(lambda *extra: self.drain(system, sizes["jobs"], *extra)[0])
            r["cpu_scaling"] = self.scaling(lambda *extra: self.cpu_rate(system, sizes["cpu"], *extra))

    def against_ceiling(self, system: System, sizes: dict[str, int]) -> list[tuple[float, float, float, float]]:
        """PAIRS times back to back: the bodies alone, then our drain and I/O workload; each
        (ceiling jobs/s, ceiling I/O efficiency, drain, I/O efficiency). A ratio to the ceiling
        holds only between measurements taken next to each other: the machine's slow phases move
        both by a third or more, and they last seconds to minutes."""
        pairs = []
        for _ in range(self.pairs):
            ceiling, ceiling_io = self.body_ceilings(sizes["jobs"], sizes["io"])
            pairs.append((ceiling, ceiling_io, self.drain(system, sizes["jobs"])[0],
                          self.io_efficiency(system, sizes["io"])))
        return pairs

    def round_trips(self, systems: list[System], n: int) -> None:
        """Every system's round trip ROUND_TRIP_ROUNDS times, the systems in turn, medians: a round
        trip takes seconds, and the machine has slow phases that long (see bench/README.md)."""
        samples: dict[str, list[tuple[float, float, float]]] = {s.key: [] for s in systems}
        for _ in range(self.rounds):
            for system in systems:
                samples[system.key].append(self.round_trip_ms(system, n))
        for system in systems:
            runs = samples[system.key]
            for i, name in enumerate(("p50", "p90", "p99")):
                system.results[name] = statistics.median(run[i] for run in runs)

    def scaling(self, rate: Callable[..., float]) -> tuple[float, float, float]:
        """One process against two, PAIRS times back to back: (median rate with one, with two,
        median of the pairs' ratios). This machine has slow phases lasting seconds, so only two
        measurements taken next to each other make a ratio."""
        pairs = [(rate(), rate("--processes", "2")) for _ in range(self.pairs)]
        return (statistics.median(one for one, _ in pairs), statistics.median(two for _, two in pairs),
                statistics.median(two / one for one, two in pairs))


def tree_peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM (peak resident set) over ``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        total += int(found.group(1)) if found else 0
    return total / 1024


def report(systems: list[System], skipped: list[str], ceilings: tuple[float, float], sizes: dict[str, int],
           pairs: int) -> str:
    ours = next((s for s in systems if s.key == OURS), None)
    lines = ["| system | drain jobs/s | bulk enqueue jobs/s | I/O efficiency | round trip p50 / p90 / p99 ms "
             "| worker peak RSS MB |", "|---|---:|---:|---:|---:|---:|"]
    for s in systems:
        r = s.results
        io = f"{r['io']:.0%}" if "io" in r else "n/a"
        lines.append(f"| {s.name} | {r['drain']:,.0f} | {r['enqueue']:,.0f} | {io} | "
                     f"{r['p50']:.2f} / {r['p90']:.2f} / {r['p99']:.2f} | {r['rss_mb']:.0f} |")
        if "drain_defaults" in r:
            p50, p90, p99 = r["round_trip_defaults"]
            lines.append(f"| {DEFAULTS_ROW} | {r['drain_defaults']:,.0f} | n/a | {r['io_defaults']:.0%} | "
                         f"{p50:.2f} / {p90:.2f} / {p99:.2f} | n/a |")
    lines.append(f"\nJob bodies alone in 100 patched greenlets, no queue (the ceiling of any gevent worker; "
                 f"medians of {pairs} run{'s' if pairs > 1 else ''}): no-op {ceilings[0]:,.0f} jobs/s, I/O "
                 f"efficiency {ceilings[1]:.0%}; sizes: {sizes}. Round trips: medians of the same number of "
                 f"rounds, every system in turn.")
    if ours is not None:
        lines.append(f"upnext-gevent runs tuned (concurrency 100, UPNEXT_QUEUE_BATCH_SIZE and _INBOX_SIZE 32); "
                     f"the {DEFAULTS_ROW!r} row runs with no tuning at all: it drains {sizes['defaults_jobs']:,} "
                     f"jobs, and its I/O workload is {sizes['io'] // 50:,} jobs in its 2 slots (the same ideal "
                     f"second).")
        beside = ours.results["against_ceiling"]
        drain = statistics.median(d / c for c, _, d, _ in beside)
        io = statistics.median(i - ci for _, ci, _, i in beside)
        shown = "; ".join(f"{d:,.0f} vs {c:,.0f} jobs/s, I/O {i:.0%} vs {ci:.0%}" for c, ci, d, i in beside)
        lines.append(f"upnext-gevent against the ceiling, each beside the bodies alone measured just before "
                     f"({len(beside)} pair{'s' if len(beside) > 1 else ''}: {shown}): drain {drain:.0%} of the "
                     f"bodies alone, I/O efficiency {io * 100:+.0f} points against theirs (medians of the pairs).")
    if ours is not None:
        o = ours.results
        (d1, d2, dx), (c1, c2, cx) = o["drain_scaling"], o["cpu_scaling"]
        lines.append(f"\nupnext-gevent alone, one process against `--processes 2`, back to back (medians of "
                     f"{pairs} pair{'s' if pairs > 1 else ''}): "
                     f"no-op drain {d1:,.0f} -> {d2:,.0f} jobs/s (x{dx:.2f}); CPU-bound {c1:.1f} -> "
                     f"{c2:.1f} jobs/s (x{cx:.2f}).")
        peers = [s for s in systems if s is not ours]
        if peers:
            lines += ["", "| ratio: upnext-gevent vs | drain | bulk enqueue | I/O efficiency | round trip p50 "
                      "(peer / ours) |", "|---|---:|---:|---:|---:|"]
            for p in peers:
                r = p.results
                io = f"x{o['io'] / r['io']:.2f}" if "io" in r else "n/a"
                lines.append(f"| {p.name} | x{o['drain'] / r['drain']:.2f} | x{o['enqueue'] / r['enqueue']:.2f} | "
                             f"{io} | x{r['p50'] / o['p50']:.2f} |")
            best = {k: max(p.results.get(k, 0) for p in peers) for k in ("drain", "enqueue", "io")}
            best_p50 = min(p.results["p50"] for p in peers)
            lines.append(f"| **best peer** | **x{o['drain'] / best['drain']:.2f}** | "
                         f"**x{o['enqueue'] / best['enqueue']:.2f}** | **x{o['io'] / best['io']:.2f}** | "
                         f"**x{best_p50 / o['p50']:.2f}** |")
    lines += [f"\nSkipped: {s}" for s in skipped]
    return "\n".join(lines)


def machine() -> str:
    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    version = next((w.split("=")[1] for w in server if w.startswith("v=")), "?")
    return (f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()} (ours), redis-server {version} on loopback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the runner")
    parser.add_argument("--only", help="comma-separated systems, e.g. upnext_gevent,huey")
    parser.add_argument("--results", help="also write the report to this markdown file")
    opts = parser.parse_args()
    sizes = ({"jobs": 500, "io": 200, "round_trips": 30, "cpu": 4, "defaults_jobs": 200} if opts.quick else
             {"jobs": 20000, "io": 2000, "round_trips": 500, "cpu": 40, "defaults_jobs": 4000})
    with local_redis() as url:
        runner = Runner(url, opts.quick)
        systems, skipped = discover(set(opts.only.split(",")) if opts.only else None)
        for system in systems:
            system.name = runner.name_of(system)
            print(f"measuring {system.name} ...", file=sys.stderr, flush=True)
            runner.measure(system, sizes)
        print("measuring the round trips, every system in turn ...", file=sys.stderr, flush=True)
        runner.round_trips(systems, sizes["round_trips"])
        ours = next((s for s in systems if s.key == OURS), None)
        runs = ([(c, ci) for c, ci, _, _ in ours.results["against_ceiling"]] if ours is not None else
                [runner.body_ceilings(sizes["jobs"], sizes["io"]) for _ in range(runner.rounds)])
        ceilings = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        text = f"Machine: {machine()}.\n\n" + report(systems, skipped, ceilings, sizes, runner.pairs)
        print(text)
        if opts.results:
            Path(opts.results).write_text(text + "\n")


if __name__ == "__main__":
    main()
