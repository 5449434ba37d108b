"""Python bytecodes per job: how much interpreter work a worker does for each job of a drain,
against the job bodies alone (run.py's ceiling), counted, not timed. sys.settrace's opcode events
are exact; what moves between runs is only what timing decides (how many jobs each take and each
flush carries, how many connections the bodies open): about 5 % of the totals and a few bytecodes
of our own functions', where this machine's timings move by a third between minutes. So this is
the measure that says what a change to the per-job path saved.

Each side runs twice, at N/5 and N jobs, and the difference is divided by the jobs between them,
so imports and start-up (with its 100 connections: N/5 is at least 100) cancel out. Tracing slows
both sides about tenfold alike; the count is of bytecodes only (not the C under them: hiredis, the
JSON encoder, greenlet switches, syscalls).

  ours     a burst worker (--concurrency 100, batch 32, inbox 32) draining N no-op jobs
  bodies   N INCRs from 100 patched greenlets, no queue (run.py's BODIES_ALONE)

Usage: python bench/bytecodes.py [--jobs 5000] [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from run import BODIES_ALONE, OURS, PEERS, Runner, discover, local_redis

# Runs in the traced child: count opcode events per function, write them as JSON at exit.
TRACER = """
import atexit, collections, functools, importlib.metadata, json, os, sys
# redis-py reads its own version from the package metadata for every connection it opens (an
# email-header parse, thousands of bytecodes): once is enough, or how many connections a run
# happened to open would swing its per-job count.
importlib.metadata.version = functools.cache(importlib.metadata.version)
counts = collections.Counter()
def per_line(frame, event, arg):
    if event == "opcode":
        counts[frame.f_code] += 1
    return per_line
def per_call(frame, event, arg):
    frame.f_trace_opcodes = True
    return per_line
def write():
    sys.settrace(None)
    named = collections.Counter()
    for code, n in counts.items():
        named[f"{code.co_filename}:{code.co_firstlineno}({code.co_name})"] += n
    with open(os.environ["BYTECODES_OUT"], "w") as out:
        json.dump(named, out)
atexit.register(write)
sys.settrace(per_call)
"""
# The worker as the peer adapter starts it (with its TUNING, concurrency 100), in this process;
# patched first, as the CLI patches before it imports the app.
RUN_OURS = """
from gevent import monkey
monkey.patch_all()
import upnext_gevent_peer
for name, value in upnext_gevent_peer.TUNING.items():
    os.environ.setdefault(name, value)
sys.argv = ["upnext-gevent", "upnext_gevent_peer:worker", "--concurrency", "100", "--log-level", "error", "--burst"]
from upnext.cli.main import main
main()
"""
GENERATED = ("__init__", "__repr__", "__eq__", "__hash__")  # what dataclasses compile from "<string>"
NAMED_TUPLE_NEW = ":1(<lambda>)"  # a named tuple's __new__: a one-line lambda compiled from "<string>"


Counts = collections.Counter[str]


def counted(env: dict[str, str], code: str, args: list[str]) -> Counts:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "counts.json"
        subprocess.run([sys.executable, "-c", TRACER + code, *args], cwd=PEERS, env={**env, "BYTECODES_OUT": str(out)},
                       check=True, stdout=subprocess.DEVNULL)
        return collections.Counter(json.loads(out.read_text()))


def ours(runner: Runner, n: int) -> Counts:
    system = discover({OURS})[0][0]
    runner.redis.flushall()
    runner.call(system, "enqueue", "noop", str(n))
    found = counted({**runner.env_for(system), "BENCH_CONCURRENCY": "100"}, RUN_OURS, [])
    if runner.done_count() < n:
        sys.exit(f"the traced worker did only {runner.done_count()} of {n} jobs")
    return found


def bodies(runner: Runner, n: int) -> Counts:
    return counted(dict(runner.env), BODIES_ALONE, [str(n), "0", "50", "100"])


def per_job(measure: Callable[[Runner, int], Counts], runner: Runner, n: int) -> dict[str, float]:
    small, large = n // 5, n
    few, many = measure(runner, small), measure(runner, large)
    return {name: (many[name] - few.get(name, 0)) / (large - small) for name in many}


def package(name: str) -> str:
    path, function = name.rsplit(":", 1)
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    if "/upnext/" in path:
        return "upnext"
    if path == "<string>" and (function.split("(")[-1].rstrip(")") in GENERATED or name.endswith(NAMED_TUPLE_NEW)):
        return "generated methods (dataclasses, named tuples)"
    if path == "<string>" or path.endswith("_peer.py"):
        return "the bench's own code (job body, spawning loop)"
    return "standard library"


def short(name: str) -> str:
    path, rest = name.rsplit(":", 1)
    for marker in ("site-packages/", "/upnext/"):
        if marker in path:
            path = ("upnext/" if marker == "/upnext/" else "") + path.split(marker, 1)[1]
    return f"{path}:{rest}"


def report(ours_job: dict[str, float], bodies_job: dict[str, float], top: int) -> str:
    total_ours, total_bodies = sum(ours_job.values()), sum(bodies_job.values())
    lines = [f"bytecodes per job: ours {total_ours:,.0f}, the bodies alone {total_bodies:,.0f} "
             f"(bodies / ours = {total_bodies / total_ours:.0%}: the drain's ratio to the ceiling if every "
             f"bytecode cost the same)", "", "| package | ours | bodies alone |", "|---|---:|---:|"]
    by_ours: dict[str, float] = collections.defaultdict(float)
    by_bodies: dict[str, float] = collections.defaultdict(float)
    for name, n in ours_job.items():
        by_ours[package(name)] += n
    for name, n in bodies_job.items():
        by_bodies[package(name)] += n
    for name, n in sorted(by_ours.items(), key=lambda item: -item[1]):
        if n >= 1 or by_bodies[name] >= 1:
            lines.append(f"| {name} | {n:,.0f} | {by_bodies[name]:,.0f} |")
    lines += ["", f"Our functions, bytecodes per job (top {top}):", ""]
    mine = sorted(((n, name) for name, n in ours_job.items() if package(name) == "upnext"), reverse=True)
    lines += [f"  {n:7.1f}  {short(name)}" for n, name in mine[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.jobs < 500:  # below it, the smaller run opens fewer than the 100 connections: not start-up alike
        sys.exit("--jobs must be at least 500")
    with local_redis() as url:
        runner = Runner(url, quick=False)
        print(report(per_job(ours, runner, args.jobs), per_job(bodies, runner, args.jobs), args.top))


if __name__ == "__main__":
    main()
