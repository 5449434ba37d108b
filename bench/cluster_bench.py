"""Redis Cluster against one redis-server, in one run: drain, ``submit_many`` and the idle-worker
round trip with two functions, medians of 3, with the ratios the cluster must reach.

Starts a local 3-master cluster (as tests/test_cluster.py does) and one loopback redis-server
(bench/run.py's ``local_redis``). The job bodies INCR a counter that lives on the cluster, through
a cluster client, in both runs: the body costs the same either way, so the ratios measure the
queue alone. The worker is this module's ``worker`` (one process, concurrency 100, batch 32,
inbox 32), serving ``noop`` and ``quiet`` (``BENCH_FUNCTIONS=1``: ``noop`` alone).
Usage: python bench/cluster_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

from run import free_port, local_redis  # noqa: E402

import upnext  # noqa: E402  (after the path: this checkout's upnext)

COUNTER = "bench:done"
TUNING = {"UPNEXT_QUEUE_BATCH_SIZE": "32", "UPNEXT_QUEUE_INBOX_SIZE": "32"}
TARGETS = {"drain": 0.90, "submit_many": 0.85}  # cluster / single node, at least
ROUND_TRIP_TARGET = 2.0  # cluster p50 / single-node p50, at most
REPEATS = 3
WARM_UP = 20  # round trips not counted: a fresh connection's first calls
# A pause before each round trip (not timed), so the job reaches a worker that is idle, blocked
# (or polling) on its streams, not one still busy with the last job's aftermath.
IDLE_GAP_S = (0.02, 0.06)

worker = upnext.Worker("bench", concurrency=100)
_counter: redis.RedisCluster | None = None


def _count() -> None:
    global _counter
    if _counter is None:
        _counter = redis.RedisCluster.from_url(os.environ["BENCH_COUNTER_URL"], max_connections=1000)
    _counter.incr(COUNTER)


@worker.task
def noop() -> None:
    _count()


if os.environ.get("BENCH_FUNCTIONS", "2") == "2":
    @worker.task
    def quiet() -> None:
        """The second function: idle in the drain, a worker with two functions in the round trip."""
        _count()


@contextlib.contextmanager
def local_cluster(masters: int = 3) -> Iterator[str]:
    """A Redis Cluster of ``masters`` masters on loopback, no replicas, no persistence; the URL
    of its first node once cluster_state is ok. Stopped on the way out."""
    ports: list[int] = []
    while len(ports) < masters:  # the cluster bus listens on port + 10000
        port = free_port()
        if port < 55536 and port not in ports and _is_free(port + 10000):
            ports.append(port)
    workdir = Path(tempfile.mkdtemp(prefix="upnext-cluster-bench-"))
    procs = [subprocess.Popen(["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                               "--cluster-config-file", str(workdir / f"nodes-{p}.conf"), "--save", "",
                               "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
             for p in ports]
    try:
        for p in ports:
            _wait(lambda p=p: redis.Redis(port=p).ping(), f"cluster node {p}")
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas",
                        "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        node = redis.Redis(port=ports[0], decode_responses=True)
        _wait(lambda: node.cluster("info")["cluster_state"] == "ok", "cluster_state ok")
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _is_free(port: int) -> bool:
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait(check: Callable[[], object], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError):
            if check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.05)


class Target:
    """One Redis (a cluster or a single server) the queue runs on; the counter is always on the
    cluster."""

    def __init__(self, url: str, counter_url: str, functions: int):
        self.url, self.functions = url, functions
        self.client = upnext.Worker("web", redis_url=url)
        self.noop = self.client.task(name="noop")(lambda: None)
        self.counter = redis.RedisCluster.from_url(counter_url)
        self.env = {**os.environ, **TUNING, "UPNEXT_REDIS_URL": url, "BENCH_COUNTER_URL": counter_url,
                    "BENCH_FUNCTIONS": str(functions),
                    "PYTHONPATH": os.pathsep.join((str(BENCH), str(BENCH.parent)))}

    def reset(self) -> None:
        """Empty the queue's Redis and the counter (the cluster: every master)."""
        if self.url != self.env["BENCH_COUNTER_URL"]:
            redis.Redis.from_url(self.url).flushall()
        self.counter.flushall()

    def start_worker(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "upnext.cli", "cluster_bench:worker", "--concurrency", "100",
                                 "--log-level", "error"], cwd=BENCH, env=self.env, stdout=subprocess.DEVNULL,
                                start_new_session=True)

    def done(self) -> int:
        return int(self.counter.get(COUNTER) or 0)

    def wait_done(self, n: int, proc: subprocess.Popen[bytes], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.done() < n:
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {proc.returncode} after {self.done()} of {n} jobs")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.done()} of {n} jobs were done after {timeout:.0f} s")
            time.sleep(0.005)
        return time.perf_counter()

    def submit(self, n: int) -> float:
        """``submit_many`` of ``n`` no-op jobs, 1,000 per call; jobs/s."""
        began = time.perf_counter()
        for i in range(0, n, 1000):
            upnext.submit_many(self.noop, [{}] * min(1000, n - i))
        return n / (time.perf_counter() - began)

    def drain(self, n: int) -> tuple[float, float]:
        """(submit_many jobs/s, drain jobs/s from the first completion to the last)."""
        self.reset()
        submitted = self.submit(n)
        proc = self.start_worker()
        try:
            self.wait_done(1, proc, 120)
            first = time.perf_counter()
            return submitted, (n - 1) / (self.wait_done(n, proc, n / 50 + 120) - first)
        finally:
            stop(proc)

    def round_trips(self, n: int) -> list[float]:
        """Submit one job to an idle worker and wait for its result, ``n`` times; ms each."""
        self.reset()
        proc = self.start_worker()
        try:
            self.noop.wait(wait_timeout=60)
            samples, gaps = [], random.Random(16)
            for _ in range(WARM_UP + n):
                time.sleep(gaps.uniform(*IDLE_GAP_S))
                began = time.perf_counter()
                self.noop.wait(wait_timeout=30)
                samples.append((time.perf_counter() - began) * 1000)
            return samples[WARM_UP:]
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def measure(target: Target, sizes: dict[str, int], repeats: int) -> dict[str, float]:
    runs = [target.drain(sizes["jobs"]) for _ in range(repeats)]
    trips = [target.round_trips(sizes["round_trips"]) for _ in range(repeats)]
    quantiles = [statistics.quantiles(t, n=100) for t in trips]
    return {"submit_many": statistics.median(s for s, _ in runs), "drain": statistics.median(d for _, d in runs),
            "p50": statistics.median(q[49] for q in quantiles), "p99": statistics.median(q[98] for q in quantiles)}


def report(single: dict[str, float], cluster: dict[str, float], hot: tuple[float, float], sizes: dict[str, int],
           repeats: int) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = ["| | one redis-server | 3-master cluster | cluster / single | target |", "|---|---:|---:|---:|---|"]
    for what in ("drain", "submit_many"):
        ratio = cluster[what] / single[what]
        lines.append(f"| {what} jobs/s | {single[what]:,.0f} | {cluster[what]:,.0f} | {ratio:.0%} | "
                     f">= {TARGETS[what]:.0%}: {verdict(ratio >= TARGETS[what])} |")
    ratio = cluster["p50"] / single["p50"]
    lines.append(f"| idle round trip p50 / p99 ms, two functions | {single['p50']:.2f} / {single['p99']:.2f} | "
                 f"{cluster['p50']:.2f} / {cluster['p99']:.2f} | x{ratio:.2f} | "
                 f"<= x{ROUND_TRIP_TARGET:.0f}: {verdict(ratio <= ROUND_TRIP_TARGET)} |")
    lines.append(f"\nOne hot function (a worker serving `noop` alone; one function is one hash slot, so one "
                 f"shard): drain {hot[1]:,.0f} jobs/s on the cluster against {hot[0]:,.0f} on one redis-server "
                 f"({hot[1] / hot[0]:.0%}).")
    lines.append(f"\nOne worker process, concurrency 100, batch 32, inbox 32; the drain and round trip workers "
                 f"serve two functions (`noop` busy, `quiet` idle); sizes {sizes}, medians of {repeats}. Job "
                 f"bodies INCR a counter on the cluster through a cluster client in both columns.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke run")
    opts = parser.parse_args()
    sizes = {"jobs": 500, "round_trips": 30} if opts.quick else {"jobs": 20000, "round_trips": 300}
    repeats = 1 if opts.quick else REPEATS
    with local_cluster() as cluster_url, local_redis() as single_url:
        figures = {}
        for name, url in (("single", single_url), ("cluster", cluster_url)):
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            figures[name] = measure(Target(url, cluster_url, functions=2), sizes, repeats)
        hot = tuple(statistics.median(Target(url, cluster_url, functions=1).drain(sizes["jobs"])[1]
                                      for _ in range(repeats)) for url in (single_url, cluster_url))
        print(report(figures["single"], figures["cluster"], (hot[0], hot[1]), sizes, repeats))


if __name__ == "__main__":
    main()
