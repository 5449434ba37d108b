"""A smoke run of the benchmark runner (``bench/run.py --quick``, upnext-gevent only), so the
runner keeps working. Its figures are only checked to exist: timing claims belong to the
benchmark (bench/RESULTS.md), never to the test suite."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_benchmark_runner_measures_every_workload_of_ours():
    done = subprocess.run([sys.executable, "bench/run.py", "--quick", "--only", "upnext_gevent"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    (row,) = [line for line in lines if line.startswith("| upnext-gevent ") and "defaults" not in line]
    (defaults,) = [line for line in lines if line.startswith("| upnext-gevent (defaults: concurrency 2, batch 4) |")]
    d_drain, _, d_io, d_round_trip, _ = [cell.strip() for cell in defaults.strip("|").split("|")[1:]]
    assert float(d_drain.replace(",", "")) > 0 and 0 < float(d_io.rstrip("%")) <= 100
    assert all(float(ms) > 0 for ms in d_round_trip.split(" / "))
    (beside,) = [line for line in lines if line.startswith("upnext-gevent against the ceiling, each beside")]
    assert re.search(r"\(1 pair: [\d,]+ vs [\d,]+ jobs/s, I/O \d+% vs \d+%\): drain \d+% of the bodies alone", beside)
    drain, enqueue, io, round_trip, rss = [cell.strip() for cell in row.strip("|").split("|")[1:]]
    assert float(drain.replace(",", "")) > 0 and float(enqueue.replace(",", "")) > 0
    assert 0 < float(io.rstrip("%")) <= 100
    assert all(float(ms) > 0 for ms in round_trip.split(" / "))
    assert float(rss) > 0
    assert "CPU-bound" in done.stdout and "--processes 2" in done.stdout


@pytest.mark.timeout(300)  # starts six workers one after another: slow on a loaded machine
def test_the_fleet_benchmark_measures_cost_idle_fairness_and_load():
    done = subprocess.run([sys.executable, "bench/fleet.py", "--quick", "--only", "cost,idle,fairness,load"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    for what in ("submit_many", "drain", "round trip"):
        commands = float(rows[what].split("|")[2])
        assert commands > 0, rows[what]
    assert "xadd 1.00" in rows["submit_many"]  # one stream entry per job
    assert "Idle: 2 worker processes x 3 functions send" in done.stdout
    assert "beside a backlog of 20,000" in done.stdout and "| 100 |" in done.stdout


@pytest.mark.timeout(300)  # a cluster, a redis-server and four workers, one after another
def test_the_cluster_benchmark_compares_a_cluster_with_one_redis():
    done = subprocess.run([sys.executable, "bench/cluster_bench.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    for what in ("drain jobs/s", "submit_many jobs/s"):
        single, cluster, ratio = (cell.strip() for cell in rows[what].split("|")[2:5])
        assert float(single.replace(",", "")) > 0 and float(cluster.replace(",", "")) > 0 and ratio.endswith("%")
    single, cluster = (cell.strip() for cell in rows["idle round trip p50 / p99 ms, two functions"].split("|")[2:4])
    assert all(float(ms) > 0 for ms in [*single.split(" / "), *cluster.split(" / ")])
    assert "One hot function" in done.stdout


@pytest.mark.timeout(300)  # four traced processes, one after another
def test_the_bytecode_count_sets_our_drain_beside_the_bodies_alone():
    done = subprocess.run([sys.executable, "bench/bytecodes.py", "--jobs", "500", "--top", "3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ours, bodies = re.search(r"bytecodes per job: ours ([\d,]+), the bodies alone ([\d,]+)", done.stdout).groups()
    assert int(ours.replace(",", "")) > 0 and int(bodies.replace(",", "")) > 0
    # At 500 jobs the totals move by a sixth between runs (batch sizes, connections opened), so the
    # check is the one that cannot move: our functions run on our side only.
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    ours_side, bodies_side = (cell.strip() for cell in rows["upnext"].split("|")[2:4])
    assert float(ours_side.replace(",", "")) > 0 and bodies_side == "0"
    assert len(re.findall(r"^ +[\d.]+  upnext/", done.stdout, re.M)) == 3


@pytest.mark.timeout(300)
def test_the_profile_splits_a_job_into_its_phases_under_both_workloads():
    done = subprocess.run([sys.executable, "bench/profile.py", "--jobs", "2000", "--round-trips", "100"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for workload in ("drain", "round trip"):
        header = re.search(rf"^{workload}: [\d,]+ jobs in [\d.]+ s; worker CPU \d+% of a core, (\d+) µs per job "
                           r"\(([\d,]+) samples\)$", done.stdout, re.M)
        assert header and int(header[1]) > 0 and int(header[2].replace(",", "")) > 0, workload
    shares = re.findall(r"^\| job body \(its INCR\) \| (\d+)% \|", done.stdout, re.M)
    assert len(shares) == 2 and int(shares[0]) > 0  # the drain's samples land in the job bodies, at least
    assert done.stdout.count("Redis calls per job (Lua's inner calls included): ") == 2
