"""The Flask and Django examples driven end to end: a request, a real worker, the result."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.workers import ROOT, wait_for
from upnext.store import keys

DJANGO_DIR = ROOT / "examples" / "django_project"


def test_flask_view_submits_a_job_and_the_status_view_shows_its_result(start_worker):
    from examples.flask_app.app import app

    start_worker("examples.flask_app.tasks:worker", "-c", "examples/flask_app/upnext_gevent.conf.py")
    client = app.test_client()
    created = client.post("/reports?rows=5")
    assert created.status_code == 202
    job_id = created.get_json()["job_id"]
    body = wait_for(lambda: (b := client.get(f"/jobs/{job_id}").get_json())["status"] == "complete" and b,
                    timeout=20, message="the report job to complete")
    # The job ran inside the app context: it read current_app.config.
    assert body["value"] == {"rows": 5, "title": "Monthly report"} and body["progress"] == 1.0
    missing = client.get("/jobs/build_report:nope")
    assert missing.status_code == 404 and "build_report:nope" in missing.get_json()["error"]


def test_flask_status_view_answers_404_naming_an_id_that_is_not_a_job_id(redis_url):
    from examples.flask_app.app import app

    answer = app.test_client().get("/jobs/garbage")
    assert answer.status_code == 404
    assert "garbage" in answer.get_json()["error"]


@pytest.fixture
def django_shop(tmp_path, monkeypatch):
    env = {**os.environ, "SHOP_DB": str(tmp_path / "shop.sqlite3"), "DJANGO_SETTINGS_MODULE": "shop.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=DJANGO_DIR, env=env, check=True)
    monkeypatch.setenv("SHOP_DB", env["SHOP_DB"])
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "shop.settings")
    monkeypatch.syspath_prepend(str(DJANGO_DIR))
    import django

    django.setup()
    from django.test import Client

    return Client()


def test_django_job_runs_after_commit_sees_the_row_and_a_rollback_submits_nothing(
        django_shop, start_worker, redis_client, tmp_path):
    worker = start_worker("orders.tasks:worker", cwd=DJANGO_DIR)
    refused = django_shop.post("/orders", {"item": "lamp", "fail": "1"})
    assert refused.status_code == 400
    created = django_shop.post("/orders", {"item": "book"})
    assert created.status_code == 201
    order_id, job_id = created.json()["order_id"], created.json()["job_id"]
    from orders.tasks import worker as tasks_worker

    assert tasks_worker.future(job_id).value(timeout=20) == {"order_id": order_id, "item": "book"}
    detail = wait_for(lambda: (d := django_shop.get(f"/orders/{order_id}").json())["status"] == "processed" and d,
                      timeout=20, message="the order to be processed")
    assert detail["processed_by"] == f"worker pid {worker.pid}"
    # Only the committed order was ever enqueued.
    job_keys = list(redis_client.scan_iter(match=keys.job("upnext", "process_order:*")))
    assert len(job_keys) == 1


def test_django_submit_on_commit_returns_a_future_whose_job_exists_only_once_committed(django_shop, redis_client):
    import contextlib

    from django.db import transaction
    from orders.tasks import process_order

    import upnext

    with transaction.atomic():
        future = process_order.submit_on_commit(1)
        with pytest.raises(upnext.JobNotFound, match=future.job_id):
            future.status()  # chosen, not yet enqueued
    assert future.status() == "queued"
    assert redis_client.exists(keys.job("upnext", future.job_id))
    with contextlib.suppress(ValueError), transaction.atomic():
        rolled_back = process_order.submit_on_commit(2)
        raise ValueError("payment refused")
    with pytest.raises(upnext.JobNotFound, match=rolled_back.job_id):
        rolled_back.status()
