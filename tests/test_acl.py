"""The least-privilege ACL (upnext/store/acl.py, printed by ``upnext-gevent acl``) is enough:
a user made from exactly that line runs every feature (submit, a worker's runs, retries, cron,
events, cancel, status, list, jobs, show, stats, failed, retry, pause, call, purge, the metrics
scrape), and Redis's ACL LOG shows nothing denied but the one CONFIG GET left out on purpose."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

import upnext
from tests.conftest import free_port
from tests.workers import ROOT, wait_for
from upnext.dashboard import make_app
from upnext.store import acl

USER, PASSWORD = "upnext-app", "acl-test-pw"
LEFT_OUT = {"config|get", "client|setinfo"}  # see acl.COMMANDS


@pytest.fixture
def acl_url(redis_client, redis_url) -> Iterator[str]:
    """The test server's URL as USER, created by the line the ``acl`` command prints."""
    line = _cli("acl", "--user", USER, "--password", PASSWORD).stdout.strip()
    assert line == acl.setuser_line(USER, PASSWORD)
    redis_client.execute_command(*line.split())
    redis_client.acl_log_reset()
    yield redis_url.replace("redis://", f"redis://{USER}:{PASSWORD}@", 1)
    redis_client.acl_deluser(USER)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


def _denied(redis_client) -> list[dict]:
    return [e for e in redis_client.acl_log(count=1000) if e["object"] not in LEFT_OUT]


def _submitter(url: str) -> dict[str, Any]:
    """Handles named as the workers' tasks (tests.apps.jobs and flows), on the ACL user's URL."""
    submitter = upnext.Worker("acl-submitter", redis_url=url)

    def add(a: int, b: int) -> int: ...
    def fails_until(succeed_on: int) -> dict: ...
    def waits_for_gate(tag: str, limit_s: float = 30.0) -> str: ...

    handles = {fn.__name__: submitter.task(fn) for fn in (add, waits_for_gate)}
    handles["fails_until"] = submitter.task(retries=3, retry_delay=0.2)(fails_until)
    handles["order_placed"] = submitter.event("order.placed")
    return handles


def _scrape(url: str, tmp_path) -> str:
    port = free_port()
    log = open(tmp_path / "metrics.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "upnext.cli", "metrics", "--bind", f"127.0.0.1:{port}",
                             "--redis-url", url], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        return wait_for(lambda: _fetch(f"http://127.0.0.1:{port}/metrics"), timeout=60, message="a metrics scrape")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())
    except OSError:
        return None


def _dashboard(url: str, job_id: str) -> None:
    """Every dashboard page and its JSON, and a POST action, as the ACL user."""
    client = Client(make_app(url))
    for path in ("/", "/functions", "/functions/add", "/jobs", f"/jobs/{job_id}", "/failed", "/stuck", "/workers",
                 f"/search?q={job_id}", "/api/stats", "/api/bulk/retry?function=charge_card&since=1h", "/metrics"):
        reply = client.get(path)
        assert reply.status_code == 200, f"{path}: {reply.text[:500]}"
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").text)[1]
    for action in ("pause", "resume"):
        reply = client.post(f"/api/functions/add/{action}", headers={"X-CSRF-Token": token})
        assert reply.status_code == 200, reply.text



def test_every_feature_runs_as_the_least_privilege_user(acl_url, start_worker, redis_client, tmp_path):
    jobs_worker = start_worker("tests.apps.jobs:worker", "--redis-url", acl_url)
    start_worker("tests.apps.flows:worker", "--redis-url", acl_url)
    tasks = _submitter(acl_url)
    assert tasks["add"].submit(2, 3).value(timeout=60) == 5
    assert tasks["fails_until"].submit(2).value(timeout=60) == {"attempt": 2}  # one retry
    charge, confirmation = sorted(tasks["order_placed"].send(order_id="o1"), key=lambda f: f.job_id)
    assert confirmation.value(timeout=60) == "confirmed o1"
    with pytest.raises(upnext.TaskExecutionError, match="card declined"):  # after its one retry
        charge.value(timeout=60)
    gated = tasks["waits_for_gate"].submit("held")
    wait_for(lambda: redis_client.llen("ledger:waits_for_gate") == 1, timeout=60, message="the gated job running")
    _cli("cancel", gated.job_id, "--redis-url", acl_url)
    wait_for(lambda: redis_client.llen("ledger:every_second") >= 2, timeout=60, message="two cron runs")

    assert str(jobs_worker.pid) in _cli("status", "--redis-url", acl_url).stdout
    for args in (["list"], ["jobs"], ["show", charge.job_id], ["stats"], ["failed"], ["pause", "add"],
                 ["resume", "add"], ["retry", charge.job_id], ["purge", "square"],
                 ["retry", "--function", "charge_card", "--since", "1h", "--error", "declined", "--yes"],
                 ["cron", "add", "acl_cron", "0 3 * * *", "add", "--args", "[1, 2]"], ["cron", "list"],
                 ["cron", "remove", "acl_cron"]):
        _cli(*args, "--redis-url", acl_url)
    _dashboard(acl_url, charge.job_id)
    called = json.loads(_cli("call", "add", "--kwargs", '{"a": 1, "b": 2}', "--wait", "--json",
                             "--redis-url", acl_url).stdout)
    assert called["status"] == "complete", called
    assert "upnext_" in _scrape(acl_url, tmp_path)

    assert _denied(redis_client) == []
    assert "maxmemory_policy_unknown" in jobs_worker.output()  # the documented cost of leaving CONFIG out


def test_the_acl_command_refuses_a_prefix_that_is_not_a_plain_key_pattern():
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "acl", "--prefix", "jobs*"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "prefix 'jobs*'" in done.stderr


def test_a_command_the_user_may_not_send_is_one_line_naming_the_url_and_the_command(acl_url, redis_client):
    redis_client.execute_command("ACL", "SETUSER", USER, "-smembers")  # a recipe from an older release, say
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "status", "--redis-url", acl_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"redis://{USER}:***@127.0.0.1" in done.stderr and "smembers" in done.stderr, done.stderr
    assert PASSWORD not in done.stderr and "upnext-gevent acl" in done.stderr


SUBCOMMANDED = {"xgroup", "xinfo", "pubsub", "script", "client", "config"}


def test_every_command_a_lua_script_sends_is_in_the_acl():
    """A script's command the ACL lacks fails only when that script runs: catch it for every script."""
    sent = set()
    for script in (ROOT / "upnext" / "store" / "lua").glob("*.lua"):
        for command, sub in re.findall(r"redis\.call\('(\w+)'(?:,\s*'(\w+)')?", script.read_text()):
            sent.add(f"{command}|{sub}".lower() if command.lower() in SUBCOMMANDED else command.lower())
    assert sent, "no redis.call found: the pattern is stale"
    assert sent - set(acl.COMMANDS) == set()
