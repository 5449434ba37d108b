"""What limits a fleet (issue 16), measured on a loopback redis-server of its own, with
bench/run.py's worker (peers/upnext_gevent_peer.py: concurrency 100, batch 32, inbox 32):

  cost      Redis cost per job of submit_many, of a drain and of a round trip: commands (by name),
            bytes in and out, and redis-server CPU µs (INFO commandstats, stats and cpu before and
            after); the job body's own INCR is left out. The number that says how many workers
            one Redis can feed.
  scaling   the no-op drain with 1 to 4 worker processes (--processes k): jobs/s, redis-server CPU
            % and µs per job. On a 2-core machine the cores run out before Redis does.
  idle      Redis commands per second from N idle worker processes serving M functions each.
  fairness  start latency (started_at - enqueued_at, Redis clock) of a quiet function submitted
            steadily while another function of the same worker drains a backlog, against the
            same with no backlog.
  load      start and end-to-end latency at a fixed offered load (jobs submitted steadily, in
            10 ms ticks), for each rate given.

Usage: python bench/fleet.py [--quick] [--only cost,scaling,idle,fairness,load] [--results FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from run import OURS, PEERS, Runner, System, discover, local_redis, machine

TICK_S = 0.01  # the steady submitters' pace


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``values``."""
    q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
    return q[49], q[98]


class Fleet:
    def __init__(self, runner: Runner, ours: System):
        self.runner, self.ours, self.redis = runner, ours, runner.redis
        os.environ.update(BENCH_REDIS_URL=runner.url, UPNEXT_REDIS_URL=runner.url)  # this run's Redis, always
        sys.path[:0] = [str(PEERS), str(PEERS.parent.parent)]  # the adapter, this checkout's upnext
        import upnext_gevent_peer  # the tasks the worker runs, to submit them from here

        self.app = upnext_gevent_peer

    # -- Redis counters ------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        info = self.redis.info("all")
        calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in info.items() if k.startswith("cmdstat_")}
        return {"calls": calls, "in": info["total_net_input_bytes"], "out": info["total_net_output_bytes"],
                "cpu": info["used_cpu_user"] + info["used_cpu_sys"]}

    def cost(self, before: dict[str, Any], n: int, body_incrs: int = 0) -> dict[str, Any]:
        """Per-job deltas since ``before``; the INFO call that reads them is left out too."""
        after = self.counters()
        calls = {name: after["calls"][name] - before["calls"].get(name, 0) for name in after["calls"]}
        calls["incr"] = calls.get("incr", 0) - body_incrs
        calls["info"] = calls.get("info", 0) - 1
        calls = {name: count / n for name, count in calls.items() if count > 0}
        return {"commands": sum(calls.values()), "by_command": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
                "bytes_in": (after["in"] - before["in"]) / n, "bytes_out": (after["out"] - before["out"]) / n,
                "cpu_us": (after["cpu"] - before["cpu"]) * 1e6 / n}

    # -- workloads -----------------------------------------------------------------------
    def submit(self, task: Any, n: int) -> None:
        from upnext import submit_many

        for i in range(0, n, 1000):
            submit_many(task, [{}] * min(1000, n - i))

    def per_job_cost(self, n: int, round_trips: int) -> dict[str, dict[str, Any]]:
        self.redis.flushall()
        before = self.counters()
        self.submit(self.app.noop, n)
        result = {"submit_many": self.cost(before, n)}
        before = self.counters()
        proc = self.runner.start(self.ours, 100)
        try:
            self.runner.wait_done(n, proc, n / 50 + 120)
            result["drain"] = self.cost(before, n, body_incrs=n)
            self.redis.set("bench:done", 0)
            before = self.counters()
            for _ in range(round_trips):
                self.app.noop.wait(wait_timeout=30)
            result["round trip"] = self.cost(before, round_trips, body_incrs=round_trips)
        finally:
            self.runner.stop(proc)
        return result

    def scaling(self, n: int, most: int) -> list[tuple[int, float, float, float]]:
        """(processes, jobs/s, redis-server CPU share of one core, redis CPU µs per job)."""
        rows = []
        for k in range(1, most + 1):
            self.redis.flushall()
            self.submit(self.app.noop, n)
            before = self.counters()
            proc = self.runner.start(self.ours, 100, "--processes", str(k))
            try:
                self.runner.wait_done(1, proc, 120)
                first = time.time()
                last = self.runner.wait_done(n, proc, n / 50 + 120)
                cpu = self.counters()["cpu"] - before["cpu"]
            finally:
                self.runner.stop(proc)
            rows.append((k, (n - 1) / (last - first), cpu / (last - first), cpu * 1e6 / n))
        return rows

    def idle(self, workers: int, functions: int, window_s: float) -> tuple[float, float]:
        """(commands/s from the whole idle fleet, per worker process)."""
        self.redis.flushall()
        self.runner.env["BENCH_EXTRA_FUNCTIONS"] = str(functions)
        try:
            proc = self.runner.start(self.ours, 100, "--processes", str(workers))
            try:
                deadline = time.monotonic() + 120
                while len(self.redis.smembers("upnext:{_workers}:ids")) < workers:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{workers} workers did not register in 120 s")
                    time.sleep(0.2)
                time.sleep(3)  # past the start-up writes: only the idle loops from here
                before = self.counters()
                time.sleep(window_s)
                after = self.counters()
            finally:
                self.runner.stop(proc)
        finally:
            self.runner.env.pop("BENCH_EXTRA_FUNCTIONS")
        total = sum(after["calls"].values()) - sum(before["calls"].values()) - 1  # the INFO that read them
        return total / window_s, total / window_s / workers

    def steady(self, task: Any, rate: float, seconds: float) -> list[str]:
        """Submit ``task`` at ``rate`` jobs/s, in TICK_S ticks, for ``seconds``; the job ids."""
        from upnext import submit_many

        ids: list[str] = []
        ticks, owed, began = 0, 0.0, time.monotonic()
        while ticks * TICK_S < seconds:
            owed += rate * TICK_S
            batch = int(owed)
            owed -= batch
            if batch:
                ids += [f.job_id for f in submit_many(task, [{}] * batch)]
            ticks += 1
            time.sleep(max(0.0, began + ticks * TICK_S - time.monotonic()))
        return ids

    def latencies(self, ids: list[str], timeout: float = 120) -> tuple[list[float], list[float]]:
        """Start latencies and end-to-end latencies in ms, once every job in ``ids`` completed."""
        deadline = time.monotonic() + timeout
        while True:
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(f"upnext:{{{job_id.partition(':')[0]}}}:job:{job_id}",
                           "enqueued_at", "started_at", "completed_at", "status")
            rows = pipe.execute()
            if all(row[3] == b"complete" for row in rows):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sum(r[3] != b'complete' for r in rows)} of {len(ids)} jobs not complete")
            time.sleep(0.2)
        start = [(float(s) - float(e)) * 1000 for e, s, _, _ in rows]
        end = [(float(c) - float(e)) * 1000 for e, _, c, _ in rows]
        return start, end

    def fairness(self, backlog: int, quiet_rate: float, seconds: float) -> dict[str, tuple[float, float]]:
        """Quiet start latency p50/p99 alone, then beside a backlog of ``backlog`` no-op jobs."""
        result = {}
        for label, n in (("alone", 0), (f"beside a backlog of {backlog:,}", backlog)):
            self.redis.flushall()
            self.submit(self.app.noop, n)
            proc = self.runner.start(self.ours, 100)
            try:
                self.runner.ready(self.ours, proc) if n == 0 else self.runner.wait_done(1, proc, 120)
                ids = self.steady(self.app.quiet, quiet_rate, seconds)
                start, _ = self.latencies(ids)
                if n and self.runner.done_count() >= n:
                    print("fairness: the backlog ran out before the quiet jobs did; use a larger one",
                          file=sys.stderr)
            finally:
                self.runner.stop(proc)
            result[label] = percentiles(start)
        return result

    def load(self, rates: list[float], seconds: float) -> dict[float, tuple[tuple[float, float], tuple[float, float]]]:
        """Per offered rate: (start p50, p99), (end-to-end p50, p99) in ms."""
        result = {}
        for rate in rates:
            self.redis.flushall()
            proc = self.runner.start(self.ours, 100)
            try:
                self.runner.ready(self.ours, proc)
                ids = self.steady(self.app.noop, rate, seconds)
                start, end = self.latencies(ids)
            finally:
                self.runner.stop(proc)
            result[rate] = (percentiles(start), percentiles(end))
        return result


def report(results: dict[str, Any], sizes: dict[str, Any]) -> str:
    lines = [f"Machine: {machine()}. Sizes: {sizes}."]
    if "cost" in results:
        lines += ["", "| per job | Redis commands | bytes in | bytes out | redis-server CPU µs | top commands |",
                  "|---|---:|---:|---:|---:|---|"]
        for what, c in results["cost"].items():
            top = ", ".join(f"{name} {count:.2f}" for name, count in list(c["by_command"].items())[:6])
            lines.append(f"| {what} | {c['commands']:.2f} | {c['bytes_in']:,.0f} | {c['bytes_out']:,.0f} | "
                         f"{c['cpu_us']:.1f} | {top} |")
    if "scaling" in results:
        lines += ["", "| worker processes | drain jobs/s | redis-server CPU (of one core) | redis CPU µs/job |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {k} | {rate:,.0f} | {share:.0%} | {us:.1f} |" for k, rate, share, us in results["scaling"]]
    if "idle" in results:
        total, each = results["idle"]
        lines.append(f"\nIdle: {sizes['idle_workers']} worker processes x {sizes['idle_functions']} functions "
                     f"send {total:,.1f} Redis commands/s ({each:.1f} per process).")
    if "fairness" in results:
        lines.append("\nFairness, start latency of a quiet function at "
                     f"{sizes['quiet_rate']:g} jobs/s (p50 / p99 ms): " + "; ".join(
                         f"{label} {p50:.1f} / {p99:.1f}" for label, (p50, p99) in results["fairness"].items()))
    if "load" in results:
        lines += ["", "| offered load jobs/s | start p50 / p99 ms | end-to-end p50 / p99 ms |", "|---:|---:|---:|"]
        lines += [f"| {rate:,.0f} | {s50:.1f} / {s99:.1f} | {e50:.1f} / {e99:.1f} |"
                  for rate, ((s50, s99), (e50, e99)) in results["load"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", help="comma-separated parts: cost,scaling,idle,fairness,load")
    parser.add_argument("--results", help="also append the report to this markdown file")
    opts = parser.parse_args()
    quick = opts.quick
    sizes = {"jobs": 500 if quick else 20000, "round_trips": 20 if quick else 500, "processes": 2 if quick else 4,
             "idle_workers": 2 if quick else 10, "idle_functions": 3 if quick else 20, "idle_s": 2 if quick else 20,
             "backlog": 20000 if quick else 100000, "quiet_rate": 20, "quiet_s": 1 if quick else 10,
             "rates": [100] if quick else [500, 2000], "load_s": 1 if quick else 10}
    parts = set(opts.only.split(",")) if opts.only else {"cost", "scaling", "idle", "fairness", "load"}
    with local_redis() as url:
        runner = Runner(url, quick)
        (ours,), _ = discover({OURS})
        fleet = Fleet(runner, ours)
        results: dict[str, Any] = {}
        if "cost" in parts:
            results["cost"] = fleet.per_job_cost(sizes["jobs"], sizes["round_trips"])
        if "scaling" in parts:
            results["scaling"] = fleet.scaling(sizes["jobs"], sizes["processes"])
        if "idle" in parts:
            results["idle"] = fleet.idle(sizes["idle_workers"], sizes["idle_functions"], sizes["idle_s"])
        if "fairness" in parts:
            results["fairness"] = fleet.fairness(sizes["backlog"], sizes["quiet_rate"], sizes["quiet_s"])
        if "load" in parts:
            results["load"] = fleet.load(sizes["rates"], sizes["load_s"])
        text = report(results, sizes)
        print(text)
        if opts.results:
            with Path(opts.results).open("a") as out:
                out.write("\n## What limits a fleet (bench/fleet.py)\n\n" + text + "\n")


if __name__ == "__main__":
    main()
