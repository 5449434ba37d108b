"""The README's commands on examples/: a worker on examples.hello and the submit script."""

from __future__ import annotations

import subprocess
import sys

from tests.workers import ROOT


def test_hello_example_runs_from_the_readme_commands(start_worker):
    start_worker("examples.hello:worker")
    done = subprocess.run([sys.executable, "-m", "examples.submit"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "hello, world"
    assert lines[1].startswith("slow_report:") and lines[1].endswith("{'rows': 50}")


def test_shop_example_fans_out_an_order_and_runs_its_cron(start_worker, redis_client):
    start_worker("examples.shop:worker")
    done = subprocess.run([sys.executable, "-m", "examples.place_order"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["confirmation sent for A-100", "{'order_id': 'A-100', 'reserved': 2}"]
    assert redis_client.hget("upnext:{heartbeat}:cron", "next_at")
