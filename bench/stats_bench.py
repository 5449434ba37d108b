"""The costs of seeing the work (issue 14), measured on a loopback redis-server of its own:

  drain   no-op drain with stats on against UPNEXT_STATS=0, back to back in pairs (medians),
          with bench/run.py's drain (one worker, concurrency 100, batch 32, inbox 32)
  memory  Redis used_memory per ended no-op job (history and stats included), and again once the
          jobs expired (a run with a short job TTL)
  queries `stats` (store/stats.py) and `jobs` (store/history.py, when present) latency with
          --history jobs in the history indexes, seeded directly (see seed_history)

Usage: python bench/stats_bench.py [--quick] [--only drain,memory,queries] [--jobs N] [--pairs N]
       [--memory-jobs N] [--history N] [--functions N]
       [--results FILE (appends a markdown section)]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import redis
from run import OURS, Runner, System, discover, local_redis, machine

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # this checkout's upnext, for the store queries

PAIRS = 3
TTL_S = 5  # the expiry run's job TTL


def stats_env(runner: Runner, on: bool) -> None:
    if on:
        runner.env.pop("UPNEXT_STATS", None)
    else:
        runner.env["UPNEXT_STATS"] = "0"


def drain_pairs(runner: Runner, system: System, n: int, pairs: int) -> tuple[float, float, float]:
    """(median jobs/s with stats on, off, median of the pairs' on/off ratios); each pair runs back
    to back, on first in one pair and off first in the next."""
    results = []
    for i in range(pairs):
        pair = {}
        for on in ((True, False) if i % 2 == 0 else (False, True)):  # alternate: no order bias
            stats_env(runner, on)
            pair[on] = runner.drain(system, n)[0]
        results.append((pair[True], pair[False]))
    stats_env(runner, True)
    print("drain pairs (on, off jobs/s):", [(round(on), round(off)) for on, off in results], file=sys.stderr)
    return (statistics.median(on for on, _ in results), statistics.median(off for _, off in results),
            statistics.median(on / off for on, off in results))


def settled(client: redis.Redis, prefix: str = "upnext") -> bool:
    """Every job written back: no stream holds an entry (each is deleted at finish)."""
    return all(client.xlen(k) == 0 for k in client.scan_iter(f"{prefix}:*:stream"))


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def memory_per_job(runner: Runner, system: System, n: int, ttl_s: int | None) -> tuple[float, float]:
    """(bytes per ended job right after the drain, bytes per job once every job expired: only
    with ``ttl_s``). The worker runs throughout, so its connections are in both figures."""
    runner.redis.flushall()
    if ttl_s:
        runner.env["UPNEXT_QUEUE_JOB_TTL_SECONDS"] = str(ttl_s)
    proc = runner.start(system, 100)
    try:
        runner.ready(system, proc)
        wait(lambda: settled(runner.redis), 60, "the warm-up job's write-back")
        before = used_memory(runner.redis)
        runner.call(system, "enqueue", "noop", str(n))
        runner.wait_done(n, proc, n / 50 + 120)
        wait(lambda: settled(runner.redis), 120, "the write-back of every job")
        after = used_memory(runner.redis)
        if not runner.redis.exists("upnext:{noop}:stats:total"):
            raise RuntimeError("no stats were written: the worker did not run this checkout's upnext")
        expired = after
        if ttl_s:
            wait(lambda: runner.redis.dbsize() < 100, ttl_s + 600, "the expiry of the jobs' keys")
            # The history index drops expired ids when the next run of its function ends.
            runner.call(system, "enqueue", "noop", "1")
            runner.wait_done(n + 1, proc, 60)
            wait(lambda: settled(runner.redis), 60, "the write-back of the last job")
            expired = used_memory(runner.redis)
    finally:
        runner.env.pop("UPNEXT_QUEUE_JOB_TTL_SECONDS", None)
        runner.stop(proc)
    return (after - before) / n, (expired - before) / n


def seed_stats(client: redis.Redis, functions: int) -> None:
    """24 h of minute hashes and hour hashes for each function, every field set (the worst case:
    a busy function whose runs fill every bucket)."""
    from upnext.store import keys

    now_s = int(client.time()[0])
    fields = {name: 7 for name in ("completed", "failed", "retried", "cancelled")}
    for h in ("run", "wait"):
        fields.update({f"{h}_n": 16 * 7, f"{h}_sum": 12.5, **{f"{h}_{i}": 7 for i in range(16)}})
    pipe = client.pipeline(transaction=False)
    for f in range(functions):
        name = f"fn{f}"
        client.hset(keys.functions("upnext"), name, "{}")
        for minute in range(now_s // 60 - 1440, now_s // 60 + 1):
            pipe.hset(keys.stats_minute("upnext", name, minute), mapping=fields)
        for hour in range(now_s // 3600 - 24, now_s // 3600 + 1):
            pipe.hset(keys.stats_hour("upnext", name, hour), mapping=fields)
        pipe.hset(keys.stats_total("upnext", name), mapping=fields)
        pipe.execute()


def timed_ms(call, repeat: int = 20) -> float:
    """Median wall time of ``call`` in ms, after one unmeasured call."""
    call()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def stats_queries(url: str, functions: int) -> dict[str, float]:
    from upnext.store.connection import connect
    from upnext.store.queue import Queue
    from upnext.store.stats import read_stats

    queue = Queue(connect(url), "upnext")
    seed_stats(queue.client, functions)
    return {f"stats --since 1h ({functions} functions)": timed_ms(lambda: read_stats(queue, 3600)),
            f"stats --since 24h ({functions} functions)": timed_ms(lambda: read_stats(queue, 86400)),
            "stats --function fn0 --since 1h": timed_ms(lambda: read_stats(queue, 3600, "fn0"))}


def report(results: dict[str, object], opts: argparse.Namespace) -> str:
    lines = [f"Machine: {machine()}.", ""]
    if "drain" in results:
        on, off, ratio = results["drain"]  # type: ignore[misc]
        lines.append(f"- No-op drain, {opts.jobs:,} jobs, one worker (concurrency 100, batch 32, inbox 32), "
                     f"{opts.pairs} on/off pair(s) back to back, medians: stats and history on {on:,.0f} jobs/s, "
                     f"UPNEXT_STATS=0 {off:,.0f} jobs/s (on/off x{ratio:.3f}).")
    if "memory" in results:
        per_job, per_job_expired = results["memory"]  # type: ignore[misc]
        lines.append(f"- Redis used_memory per ended no-op job ({opts.memory_jobs:,} jobs, job TTL 86,400 s): "
                     f"{per_job:,.0f} bytes; with a {TTL_S} s TTL, once the jobs expired "
                     f"(and one more job ended, which trims the history index): {per_job_expired:,.1f} bytes per job "
                     "left.")
    for name, ms in dict(results.get("queries", {})).items():  # type: ignore[call-overload]
        lines.append(f"- `{name}`: {ms:.2f} ms (median of 20)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default="drain,memory,queries", help="comma-separated parts")
    parser.add_argument("--jobs", type=int, default=None, help="drain backlog (default 20,000; 500 with --quick)")
    parser.add_argument("--memory-jobs", type=int, default=None,
                        help="jobs for the memory measure (default 200,000; 2,000 with --quick)")
    parser.add_argument("--history", type=int, default=None,
                        help="jobs seeded into the history indexes (default 1,000,000; 10,000 with --quick)")
    parser.add_argument("--functions", type=int, default=10, help="functions for the query measures")
    parser.add_argument("--pairs", type=int, default=None, help=f"on/off drain pairs (default {PAIRS}; 1 with --quick)")
    parser.add_argument("--results", help="append the section to this markdown file")
    opts = parser.parse_args()
    opts.jobs = opts.jobs or (500 if opts.quick else 20000)
    opts.memory_jobs = opts.memory_jobs or (2000 if opts.quick else 200000)
    opts.history = opts.history or (10000 if opts.quick else 1000000)
    opts.pairs = opts.pairs or (1 if opts.quick else PAIRS)
    parts = set(opts.only.split(","))
    results: dict[str, object] = {}
    with local_redis() as url:
        runner = Runner(url, opts.quick)  # its workers import this checkout's upnext (Runner.env_for)
        [system], _ = discover({OURS})
        if "drain" in parts:
            results["drain"] = drain_pairs(runner, system, opts.jobs, opts.pairs)
        if "memory" in parts:
            results["memory"] = (memory_per_job(runner, system, opts.memory_jobs, None)[0],
                                 memory_per_job(runner, system, opts.memory_jobs, TTL_S)[1])
        if "queries" in parts:
            runner.redis.flushall()
            results["queries"] = {**stats_queries(url, opts.functions), **jobs_queries(url, opts.history,
                                                                                      opts.functions)}
    text = report(results, opts)
    print(text)
    if opts.results:
        with open(opts.results, "a") as out:
            out.write(text + "\n")


def seed_history(client: redis.Redis, history: int, functions: int) -> None:
    """``history`` ended jobs spread evenly over ``functions`` and the last 24 h, written as the
    finishing Lua calls write them: each job's record (the fields a listing reads) and its entry
    in its function's ``ended`` stream (id = the ms it ended, fields ``j`` and ``s``), and the
    ``failed`` index for the 7 % that failed (3 % are cancelled); pipelines of 10,000 commands."""
    from upnext.store import keys

    now_ms = int(client.time()[0]) * 1000
    per_function = history // functions
    spacing_ms = 86400 * 1000 // per_function
    pipe = client.pipeline(transaction=False)
    for f in range(functions):
        name = f"fn{f}"
        for i in reversed(range(per_function)):  # oldest first: stream ids only grow
            hex_id = f"{i:020x}"
            job_id, ms = f"{name}:{hex_id}", now_ms - i * spacing_ms
            at = (ms + 0.5) / 1000  # the listing matches floor(completed_at * 1000) to the entry's ms
            status = "failed" if i % 100 < 7 else "cancelled" if i % 100 < 10 else "complete"
            record = {"status": status, "enqueued_at": at - 0.02, "started_at": at - 0.01, "completed_at": at,
                      "attempts": 1}
            if status == "failed":
                record["error"] = "RuntimeError: boom"
                pipe.zadd(keys.failed("upnext", name), {job_id: at})
            pipe.hset(keys.job("upnext", job_id), mapping=record)
            pipe.xadd(keys.ended("upnext", name), {"j": hex_id, "s": status}, id=f"{ms}-0")
            if len(pipe) >= 10000:
                pipe.execute()
    pipe.execute()


def jobs_queries(url: str, history: int, functions: int) -> dict[str, float]:
    """`jobs` (store/history.py's list_jobs, what the command calls) over the seeded history."""
    from upnext.store.connection import connect
    from upnext.store.history import list_jobs
    from upnext.store.queue import Queue

    queue = Queue(connect(url), "upnext")
    began = time.perf_counter()
    seed_history(queue.client, history, functions)
    print(f"seeded {history:,} ended jobs in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    names = [f"fn{f}" for f in range(functions)]
    since = float(queue.client.time()[0]) - 3600
    rows, cursor = list_jobs(queue, names, limit=50)
    if len(rows) != 50 or len(list_jobs(queue, names, "failed", limit=50)[0]) != 50:
        raise RuntimeError("the seeded history does not list: its layout is not the one store/history.py reads")
    label = f"jobs over {history:,} ended jobs ({functions} functions)"
    return {f"{label}, --limit 50": timed_ms(lambda: list_jobs(queue, names, limit=50)),
            f"{label}, next page (cursor)": timed_ms(lambda: list_jobs(queue, names, limit=50, cursor=cursor)),
            f"{label}, --function fn0": timed_ms(lambda: list_jobs(queue, ["fn0"], limit=50)),
            f"{label}, --status failed": timed_ms(lambda: list_jobs(queue, names, "failed", limit=50)),
            f"{label}, --status complete": timed_ms(lambda: list_jobs(queue, names, "complete", limit=50)),
            f"{label}, --since 1h": timed_ms(lambda: list_jobs(queue, names, since=since, limit=50))}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
