"""The dashboard command and the bulk ``retry``/``cancel --function`` options, through the real CLI."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request

from tests.apps import dashboarded
from tests.test_ops import ops
from tests.workers import ROOT, wait_for


def _fetch(url: str, method: str = "GET", headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_non_loopback_bind_without_auth_is_refused_and_says_why(redis_client):
    done = ops("dashboard", "--bind", "0.0.0.0:1")
    assert done.returncode == 2 and "--auth USER:PASSWORD" in done.stderr and "--no-auth" in done.stderr
    both = ops("dashboard", "--bind", "0.0.0.0:1", "--auth", "a:b", "--no-auth")
    assert both.returncode == 2 and "contradict" in both.stderr
    bad = ops("dashboard", "--auth", "nopassword")
    assert bad.returncode == 2 and "USER:PASSWORD" in bad.stderr


def test_auth_refuses_a_request_without_the_right_credentials(start_dashboard):
    dash = start_dashboard("--auth", "ops:s3cret")
    assert _fetch(dash.url + "/")[0] == 401
    wrong = base64.b64encode(b"ops:guess").decode()
    assert _fetch(dash.url + "/api/overview", headers={"Authorization": f"Basic {wrong}"})[0] == 401
    right = base64.b64encode(b"ops:s3cret").decode()
    status, body = _fetch(dash.url + "/api/overview", headers={"Authorization": f"Basic {right}"})
    assert status == 200 and json.loads(body)["functions"] == []


def test_read_only_shows_no_action_buttons_and_refuses_posts(worker, start_dashboard):
    future = dashboarded.fails.submit(text="no")
    wait_for(lambda: future.status() == "failed", timeout=20, message="the job to fail")
    dash = start_dashboard("--read-only")
    status, page = _fetch(f"{dash.url}/jobs/{future.job_id}")
    assert status == 200 and "data-action" not in page and "read-only" in page
    for page in ("/failed", "/functions", "/functions/fails"):
        assert "data-action" not in _fetch(dash.url + page)[1], page
    status, body = _fetch(f"{dash.url}/api/jobs/{future.job_id}/retry", method="POST")
    assert status == 403 and "read-only" in json.loads(body)["error"]
    assert future.status() == "failed"


def test_bulk_retry_counts_asks_and_acts_only_when_confirmed(worker):
    matching = [dashboarded.fails.submit(text=f"Timeout {i}") for i in range(2)]
    other = dashboarded.fails.submit(text="declined")
    wait_for(lambda: all(f.status() == "failed" for f in [*matching, other]), timeout=20, message="jobs to fail")
    declined = subprocess.run([sys.executable, "-m", "upnext.cli", "retry", "--function", "fails", "--error", "timeout",
                               "--since", "1h"], cwd=ROOT, input="n\n", capture_output=True, text=True, timeout=60)
    assert declined.returncode == 1 and "2 failed job(s) of fails?" in declined.stderr
    assert "nothing done" in declined.stderr
    done = ops("retry", "--function", "fails", "--error", "timeout", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"action": "retry", "matched": 2, "done": 2, "refused": {}, "more": False}
    none = ops("retry", "--function", "fails", "--error", "nothing like it", "--yes")
    assert none.returncode == 0 and "no failed job of fails matches" in none.stdout
    assert ops("retry", "fails:00ff", "--function", "fails").returncode == 2
    assert ops("retry").returncode == 2
    assert "--function" in ops("cancel", "--error", "x").stderr


def test_bulk_cancel_cancels_the_jobs_waiting_for_a_retry(worker):
    later = [dashboarded.retries_later.submit(text=f"Timeout {i}") for i in range(2)]
    wait_for(lambda: all(f.status() == "retrying" for f in later), timeout=20, message="jobs waiting for a retry")
    done = ops("cancel", "--function", "retries_later", "--error", "TIMEOUT", "-y")
    assert done.returncode == 0 and "cancel: 2 of 2 job(s) of retries_later" in done.stdout
    assert all(f.status() == "cancelled" for f in later)
    unknown = ops("cancel", "--function", "nosuch", "--yes")
    assert unknown.returncode == 1 and "'nosuch'" in unknown.stderr
