"""Pictures of the dashboard: the overview in light and dark mode, a job's detail, the failed
list, the functions and the jobs, with a real worker's jobs on them. Every run saves them under
build/screenshots/ (not tracked); the README's copies in docs/screenshots/ are refreshed with
``UPNEXT_SCREENSHOTS=docs/screenshots python -m pytest tests/dashboard/test_screenshots.py``."""

from __future__ import annotations

import os

from tests.apps import dashboarded
from tests.workers import ROOT, wait_for

SCREENSHOTS = ROOT / os.environ.get("UPNEXT_SCREENSHOTS", "build/screenshots")


def _seed(redis_client):
    """Jobs of every kind: completed, failed (one with a script in its error), one running."""
    for i in range(12):
        dashboarded.echo.submit(value={"order": i})
    failures = [dashboarded.fails.submit(text=text) for text in
                ("Timeout talking to the payment gateway", "card declined", "<script>alert(1)</script>")]
    running = dashboarded.steps.submit(count=4)
    wait_for(lambda: all(f.status() == "failed" for f in failures) and running.status() == "active", timeout=30,
             message="the seeded jobs to fail and run")
    redis_client.rpush(dashboarded.GATE, "go", "go", "go")
    return running


def _shoot(browser, url: str, name: str, ready_css: str) -> None:
    browser.get(url)
    wait_for(lambda: browser.execute_script("return !!document.querySelector(arguments[0])", ready_css), timeout=10,
             message=f"{ready_css} on {url}")
    path = SCREENSHOTS / name
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_screenshots_of_the_overview_a_job_and_the_failed_list(worker, start_dashboard, browser, redis_client):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    running = _seed(redis_client)
    wait_for(lambda: running.status() == "active" and redis_client.llen(dashboarded.GATE) == 0, timeout=20,
             message="the running job to take its steps")
    dash = start_dashboard()
    _shoot(browser, dash.url + "/", "overview.png", "#charts svg")
    _shoot(browser, f"{dash.url}/jobs/{running.job_id}", "job.png", "#progress")
    _shoot(browser, dash.url + "/failed", "failed.png", "tr[data-job]")
    _shoot(browser, dash.url + "/functions", "functions.png", "tr[data-function]")
    _shoot(browser, dash.url + "/jobs", "jobs.png", "#job-table")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    _shoot(browser, dash.url + "/", "overview-dark.png", "#charts svg")
    redis_client.rpush(dashboarded.GATE, "go")
    running.result(timeout=20)
