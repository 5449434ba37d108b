"""The worker command, run for real: burst mode, settings, config file, log format, Redis checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.apps import jobs
from tests.workers import ROOT, wait_for


def run_cli(*args: str, cwd=ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_burst_runs_every_queued_job_then_exits(redis_client):
    futures = [jobs.add.submit(i, 1) for i in range(5)] + [jobs.fails_until.submit(2)]
    done = run_cli("tests.apps.jobs:worker", "--burst")
    assert done.returncode == 0, done.stderr
    assert [f.value(timeout=1) for f in futures[:5]] == [1, 2, 3, 4, 5]
    assert futures[5].value(timeout=1) == {"attempt": 2}
    assert "burst_done" in done.stderr


def test_json_logs_carry_job_id_function_attempt_duration_and_worker(redis_client):
    future = jobs.add.submit(1, 1)
    done = run_cli("tests.apps.jobs:worker", "--burst", "--log-format", "json")
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    completed = [entry for entry in lines if entry.get("event") == "job_completed"]
    assert completed and completed[0]["job_id"] == future.job_id
    assert {"function", "attempt", "duration_ms", "worker", "timestamp", "level"} <= set(completed[0])


def test_print_config_shows_precedence_cli_over_file_over_worker_over_env(tmp_path):
    (tmp_path / "app.py").write_text("import upnext\nworker = upnext.Worker('t', concurrency=3, "
                                     "redis_url='redis://user:secret@h:1/0')\n"
                                     "@worker.task\ndef f():\n    pass\n")
    (tmp_path / "upnext_gevent.conf.py").write_text("concurrency = 7\ngraceful_timeout = 5\n")
    env_run = subprocess.run([sys.executable, "-m", "upnext.cli", "app:worker", "--print-config",
                              "--concurrency", "9"], cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "UPNEXT_GRACEFUL_TIMEOUT": "1",
                                  "UPNEXT_QUEUE_BATCH_SIZE": "6"})
    assert env_run.returncode == 0, env_run.stderr
    # each line: "name = value  # where it came from"
    printed = {name: value.split("  # ", 1)[0] for name, value in
               (line.split(" = ", 1) for line in env_run.stdout.splitlines())}
    assert printed["concurrency"] == "9"          # CLI beats file
    assert printed["graceful_timeout"] == "5.0"    # file beats env
    assert printed["batch_size"] == "6"            # env beats default
    assert "secret" not in printed["redis_url"] and "***" in printed["redis_url"]
    no_cli = run_cli("app:worker", "--print-config", cwd=tmp_path)
    assert "concurrency = 7" in no_cli.stdout      # file beats Worker(...)
    (tmp_path / "upnext_gevent.conf.py").unlink()
    assert "concurrency = 3" in run_cli("app:worker", "--print-config", cwd=tmp_path).stdout


def test_unknown_setting_in_config_file_is_an_error_with_a_suggestion(tmp_path):
    (tmp_path / "app.py").write_text("import upnext\nworker = upnext.Worker('t')\n")
    (tmp_path / "upnext_gevent.conf.py").write_text("concurreny = 3\n")
    done = run_cli("app", "--check-config", cwd=tmp_path)
    assert done.returncode != 0
    assert "unknown setting 'concurreny'" in done.stderr and "did you mean 'concurrency'" in done.stderr


def test_hook_with_wrong_arity_is_refused_at_load(tmp_path):
    (tmp_path / "app.py").write_text("import upnext\nworker = upnext.Worker('t')\n")
    (tmp_path / "c.py").write_text("def post_job(ctx):\n    pass\n")
    done = run_cli("app", "-c", "c.py", "--check-config", cwd=tmp_path)
    assert done.returncode != 0 and "post_job" in done.stderr and "2 argument" in done.stderr


def test_bad_app_path_names_the_module(tmp_path):
    done = run_cli("no_such_module:worker", "--check-config", cwd=tmp_path)
    assert done.returncode != 0 and "no_such_module" in done.stderr and "Traceback" not in done.stderr


def test_bad_env_value_names_the_variable(tmp_path):
    (tmp_path / "app.py").write_text("import upnext\nworker = upnext.Worker('t')\n")
    done = subprocess.run([sys.executable, "-m", "upnext.cli", "app", "--check-config"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "UPNEXT_QUEUE_BATCH_SIZE": "many"})
    assert done.returncode != 0 and "UPNEXT_QUEUE_BATCH_SIZE" in done.stderr


@pytest.fixture
def evicting_redis(redis_client):
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    yield redis_client
    redis_client.config_set("maxmemory-policy", "noeviction")


def test_worker_refuses_a_redis_that_evicts_unless_allowed(evicting_redis):
    refused = run_cli("tests.apps.jobs:worker", "--burst")
    assert refused.returncode != 0 and "maxmemory-policy" in refused.stderr and "allkeys-lru" in refused.stderr
    allowed = run_cli("tests.apps.jobs:worker", "--burst", "--allow-eviction")
    assert allowed.returncode == 0, allowed.stderr


def test_health_file_is_touched_at_each_heartbeat(start_worker, tmp_path):
    health = tmp_path / "alive"
    start_worker("tests.apps.jobs:worker", env={"UPNEXT_HEALTH_FILE": str(health),
                                                "UPNEXT_QUEUE_CLAIM_TIMEOUT_MS": "300"})
    first = wait_for(lambda: health.exists() and health.stat().st_mtime_ns, message="the health file")
    wait_for(lambda: health.stat().st_mtime_ns > first, message="a later heartbeat touching it again")
