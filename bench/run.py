"""Benchmark runner: starts a loopback redis-server and measures upnext-gevent through its
real CLI. Usage: python bench/run.py [--quick]. See bench/README.md."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    def __init__(self, url: str, quick: bool):
        self.url, self.quick = url, quick
        self.redis = redis.Redis.from_url(url)
        os.environ.update(BENCH_REDIS_URL=url, UPNEXT_REDIS_URL=url)
        sys.path.insert(0, str(ROOT / "bench"))
        import jobs_upnext

        self.jobs = jobs_upnext

    def worker(self, *args: str, concurrency: int = 100) -> subprocess.Popen:
        env = {**os.environ, "BENCH_CONCURRENCY": str(concurrency), "UPNEXT_QUEUE_BATCH_SIZE":
               os.environ.get("UPNEXT_QUEUE_BATCH_SIZE", "4")}
        return subprocess.Popen([sys.executable, "-m", "upnext.cli", "jobs_upnext:worker", "--log-level", "error",
                                 *args], cwd=ROOT / "bench", env=env)

    def wait_done(self, n: int, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while int(self.redis.get("bench:done") or 0) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.redis.get('bench:done')} of {n} jobs done")
            time.sleep(0.005)
        return time.monotonic()

    def enqueue(self, n: int) -> float:
        import upnext

        self.redis.flushall()
        began = time.monotonic()
        for i in range(0, n, 1000):
            upnext.submit_many(self.jobs.noop, [{}] * min(1000, n - i))
        return n / (time.monotonic() - began)

    def drain(self, n: int, *args: str) -> float:
        """Jobs/s from the first completion to the last, backlog enqueued first."""
        self.enqueue(n)
        proc = self.worker(*args)
        while not self.redis.get("bench:done"):
            time.sleep(0.001)
        first = time.monotonic()
        last = self.wait_done(n)
        proc.terminate()
        proc.wait()
        return (n - 1) / (last - first)

    def io_efficiency(self, n: int = 2000, ms: int = 50, concurrency: int = 100) -> float:
        import upnext

        self.redis.flushall()
        proc = self.worker(concurrency=concurrency)
        time.sleep(1.0)  # worker start-up is not part of the measure
        began = time.monotonic()
        upnext.submit_many(self.jobs.io_sleep, [{"ms": ms}] * n)
        elapsed = self.wait_done(n) - began
        proc.terminate()
        proc.wait()
        return (n * ms / 1000 / concurrency) / elapsed

    def latency_ms(self, n: int = 500) -> tuple[float, float, float]:
        self.redis.flushall()
        proc = self.worker()
        self.jobs.noop.wait(wait_timeout=30)
        samples = []
        for _ in range(n):
            began = time.perf_counter()
            self.jobs.noop.wait(wait_timeout=30)
            samples.append((time.perf_counter() - began) * 1000)
        proc.terminate()
        proc.wait()
        q = statistics.quantiles(samples, n=100)
        return q[49], q[89], q[98]

    def cpu(self, n: int, processes: int) -> float:
        import upnext

        self.redis.flushall()
        proc = self.worker("--processes", str(processes), concurrency=4)
        time.sleep(1.5)
        began = time.monotonic()
        upnext.submit_many(self.jobs.cpu, [{"n": 2_000_000}] * n)
        rate = n / (self.wait_done(n) - began)
        proc.terminate()
        proc.wait()
        return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    opts = parser.parse_args()
    binary = shutil.which("redis-server") or sys.exit("redis-server is needed")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        bench = Bench(f"redis://127.0.0.1:{port}/0", opts.quick)
        n = 2000 if opts.quick else 20000
        rows = [("bulk enqueue (submit_many)", f"{bench.enqueue(n):,.0f} jobs/s"),
                ("drain no-op, 1 process", f"{bench.drain(n):,.0f} jobs/s"),
                ("drain no-op, --processes 2", f"{bench.drain(n, '--processes', '2'):,.0f} jobs/s"),
                ("I/O: 2,000 x 50 ms, concurrency 100", f"{bench.io_efficiency(200 if opts.quick else 2000):.0%}"),
                ("round trip p50 / p90 / p99", " / ".join(f"{v:.2f} ms" for v in
                                                          bench.latency_ms(50 if opts.quick else 500))),
                ("CPU-bound, 1 process", f"{bench.cpu(8 if opts.quick else 40, 1):.1f} jobs/s"),
                ("CPU-bound, --processes 2", f"{bench.cpu(8 if opts.quick else 40, 2):.1f} jobs/s")]
        width = max(len(r[0]) for r in rows)
        print(f"upnext-gevent on redis-server at port {port}, batch_size "
              f"{os.environ.get('UPNEXT_QUEUE_BATCH_SIZE', '4')}")
        for name, value in rows:
            print(f"  {name.ljust(width)}  {value}")
        print(f"  (runner peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
