"""``--only`` / ``--exclude``: a worker process serves a subset of the app's functions, so a team
can give slow or heavy functions a fleet of their own. Run for real through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.apps import flows, jobs
from tests.workers import ROOT, wait_for
from upnext import config
from upnext.errors import ConfigError
from upnext.job import function_of


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "upnext.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_only_serves_the_named_functions_and_exclude_the_others(redis_client):
    added, other = jobs.add.submit(1, 2), jobs.fails_until.submit(1)
    done = run_cli("tests.apps.jobs:worker", "--burst", "--only", "add")
    assert done.returncode == 0, done.stderr
    assert added.value(timeout=1) == 3
    assert other.status() == "queued"  # the burst has exited: nothing served fails_until
    done = run_cli("tests.apps.jobs:worker", "--burst", "--exclude", "add,sleep_for")
    assert done.returncode == 0, done.stderr
    assert other.value(timeout=1) == {"attempt": 1}


def test_the_env_var_selects_like_the_flag(redis_client):
    added, other = jobs.add.submit(2, 2), jobs.fails_until.submit(1)
    done = run_cli("tests.apps.jobs:worker", "--burst", env={"UPNEXT_ONLY": "fails_until"})
    assert done.returncode == 0, done.stderr
    assert other.value(timeout=1) == {"attempt": 1}
    assert added.status() == "queued"


def test_a_running_worker_registers_only_what_it_serves(redis_client, start_worker):
    worker = start_worker("tests.apps.flows:worker", "--exclude", "every_second,charge_card")
    (info,) = [json.loads(redis_client.get(f"upnext:{{_workers}}:{worker_id}"))
               for worker_id in worker.wait_registered(redis_client)]
    served = set(info["functions"])
    assert "square" in served and not served & {"every_second", "charge_card"}
    assert flows.square.submit(4).value(timeout=20) == 16
    # charge_card is still an order.placed handler: its job waits for a worker that serves it
    sent = {function_of(f.job_id): f for f in flows.order_placed.send(order_id="o1")}
    wait_for(lambda: sent["send_confirmation"].status() == "complete", timeout=20, message="the served handler ran")
    assert sent["charge_card"].status() == "queued"


def test_an_unknown_name_fails_check_config_naming_it_and_the_setting(redis_client):
    done = run_cli("tests.apps.jobs:worker", "--check-config", "--only", "add,ad_")
    assert done.returncode == 1
    assert "only" in done.stderr and "'ad_'" in done.stderr and "did you mean 'add'" in done.stderr
    done = run_cli("tests.apps.jobs:worker", "--check-config", "--exclude", "nope")
    assert done.returncode == 1 and "exclude" in done.stderr and "'nope'" in done.stderr


def test_a_selection_that_leaves_nothing_is_refused(redis_client):
    names = ",".join(jobs.worker.tasks)
    done = run_cli("tests.apps.jobs:worker", "--check-config", "--exclude", names)
    assert done.returncode == 1 and "leave none" in done.stderr


def test_subset_keeps_the_selected_crons_and_leaves_the_app_whole():
    view = flows.worker.subset(only=("every_second", "square"))
    assert set(view.tasks) == {"every_second", "square"} and set(view.crons) == {"every_second"}
    assert "charge_card" in flows.worker.tasks and "every_second" in flows.worker.crons
    assert flows.worker.subset() is flows.worker
    assert set(flows.worker.subset(exclude=("every_second",)).crons) == set()


@pytest.mark.parametrize("value, expected", [
    ("a, b,,a", ("a", "b")), (["a", "b"], ("a", "b")), ((), ()), ("", ()),
])
def test_the_setting_takes_a_comma_list_or_a_list(value, expected):
    assert config.parse_values({"only": value}, "test")["only"] == expected


def test_a_setting_that_is_not_names_is_a_clear_error():
    with pytest.raises(ConfigError, match="exclude .*must be function names"):
        config.parse_values({"exclude": [1, 2]}, "config file")
